// Keyboard shortcuts as data: key combination -> action name. Shortcuts are
// ignored while typing in a form field, in the palette or with a dialog open.

export const KEYMAP = {
  'ctrl-z': 'undo',
  'ctrl-y': 'redo',
  'ctrl-shift-z': 'redo',
  'ctrl-c': 'copy',
  'ctrl-x': 'cut',
  'ctrl-v': 'paste',
  'delete': 'delete',
  'backspace': 'delete',
  'ctrl-a': 'select-all',
  'ctrl-f': 'search',
  'ctrl-d': 'deploy',
  'ctrl-e': 'export',
  'ctrl-i': 'import',
  'escape': 'deselect',
  'enter': 'edit',
};

/** The keymap name of a keyboard event: `ctrl-shift-z`, `delete`. */
export function comboOf(e) {
  const parts = [];
  if (e.ctrlKey || e.metaKey) parts.push('ctrl');
  if (e.altKey) parts.push('alt');
  if (e.shiftKey) parts.push('shift');
  parts.push(e.key.toLowerCase());
  return parts.join('-');
}

export function installKeymap(actions) {
  document.addEventListener('keydown', (e) => {
    if (document.getElementById('dialog-layer').childElementCount) return;
    const t = e.target;
    if (t.closest?.('input, textarea, select, [contenteditable], #palette')) return;
    const name = KEYMAP[comboOf(e)];
    if (!name || !actions[name]) return;
    e.preventDefault();
    actions[name]();
  });
}
