// Undo/redo over the model's reversible actions: an action holds every
// changed object's state before and after, and the object order.

const MAX_ACTIONS = 200;

export function createHistory(model, onChange) {
  const undoStack = [];
  const redoStack = [];
  model.addEventListener('action', (e) => {
    undoStack.push(e.detail);
    if (undoStack.length > MAX_ACTIONS) undoStack.shift();
    redoStack.length = 0;
    onChange();
  });
  model.addEventListener('change', (e) => { if (e.detail?.reset) { undoStack.length = 0; redoStack.length = 0; onChange(); } });
  return {
    get canUndo() { return undoStack.length > 0; },
    get canRedo() { return redoStack.length > 0; },
    undo() {
      const a = undoStack.pop();
      if (!a) return;
      redoStack.push(a);
      model.applyAction(a, 'before');
      onChange();
    },
    redo() {
      const a = redoStack.pop();
      if (!a) return;
      undoStack.push(a);
      model.applyAction(a, 'after');
      onChange();
    },
  };
}
