// The Deploy button and its menu (full / modified flows / modified nodes),
// highlighted when the flows differ from what runs. A refused deploy (400)
// marks the nodes at fault and lists every error; a revision conflict (409)
// asks before overwriting what someone else deployed.

import { h, post, modal, toast, HttpError } from './util.js';
import { labelOf } from './model.js';

const TYPE_KEY = 'flowd-deploy-type';
const TYPE_LABELS = { full: 'Deploy', flows: 'Deploy flows', nodes: 'Deploy nodes' };

export function createDeploy(model, reveal) {
  const button = document.getElementById('btn-deploy');
  const menuButton = document.getElementById('btn-deploy-menu');
  const menu = document.getElementById('deploy-menu');
  const errorBox = document.getElementById('deploy-errors');
  let type = localStorage.getItem(TYPE_KEY) || 'full';
  let busy = false;

  function showType() {
    button.textContent = TYPE_LABELS[type] || 'Deploy';
    button.dataset.deployType = type;
    for (const li of menu.children) li.setAttribute('aria-checked', String(li.dataset.deployType === type));
  }
  showType();

  menuButton.addEventListener('click', (e) => { e.stopPropagation(); menu.hidden = !menu.hidden; });
  document.addEventListener('click', () => { menu.hidden = true; });
  menu.addEventListener('click', (e) => {
    const li = e.target.closest('[data-deploy-type]');
    if (!li) return;
    type = li.dataset.deployType;
    localStorage.setItem(TYPE_KEY, type);
    showType();
    menu.hidden = true;
  });
  button.addEventListener('click', () => deploy());

  async function deploy(force = false) {
    if (busy) return;
    busy = true;
    button.disabled = true;
    const body = { flows: model.toFlows() };
    if (!force && model.rev) body.rev = model.rev;
    try {
      const res = await post('flows', body, { 'Node-RED-API-Version': 'v2', 'Node-RED-Deployment-Type': type });
      model.rev = res.rev;
      model.markDeployed();
      model.setErrors([]);
      showErrors([]);
      model.emit('change', { deployed: true });
      toast('Successfully deployed');
    } catch (e) {
      if (e instanceof HttpError && e.status === 409) conflict();
      else if (e instanceof HttpError && e.body?.errors) {
        model.setErrors(e.body.errors);
        showErrors(e.body.errors);
        toast(e.body.message || 'Deploy refused', true);
      } else toast(`Deploy failed: ${e.message}`, true);
    } finally {
      busy = false;
      button.disabled = false;
    }
  }

  function conflict() {
    modal({
      title: 'The flows changed on the server', id: 'deploy-conflict', centered: true,
      body: h('p', {}, 'Someone deployed other flows since you loaded yours. Deploying now replaces them with what you see here.'),
      buttons: [
        { label: 'Cancel', onclick: (close) => close() },
        { label: 'Overwrite', id: 'deploy-overwrite', primary: true, onclick: (close) => { close(); deploy(true); } },
      ],
    });
  }

  function showErrors(errors) {
    errorBox.hidden = !errors.length;
    if (!errors.length) { errorBox.replaceChildren(); return; }
    errorBox.replaceChildren(
      h('h4', {}, `Deploy refused: ${errors.length} error(s), nothing changed`),
      h('ul', {}, errors.map((e) => {
        const n = e.node && model.nodes.get(e.node);
        const who = n ? `${labelOf(n, model.descriptor(n.type))} (${n.type})` : e.node || 'flows';
        return h('li', { 'data-node-id': e.node || '', onclick: () => e.node && reveal(e.node) },
          `${who}${e.field ? ` ${e.field}` : ''}: ${e.message}`);
      })),
      h('button', { type: 'button', onclick: () => { errorBox.hidden = true; } }, 'close'));
  }

  function refresh() {
    const dirty = model.dirty;
    button.classList.toggle('dirty', dirty);
    document.title = `${dirty ? '* ' : ''}flowd`;
  }

  return { deploy, refresh };
}
