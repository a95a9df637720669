// The /comms websocket: authenticates in-band when logged in, subscribes,
// hands each {topic, data} event to `onEvent`, and reconnects with a
// growing delay (1 s .. 10 s) when the connection drops.

import { auth } from './util.js';

const TOPICS = ['debug', 'status/#', 'notification/#', 'flowd/#'];
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 10000;

export function connectComms(onEvent, onState) {
  let retry = RETRY_MIN_MS;
  let ws = null;

  function open() {
    const url = new URL('comms', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(url);
    ws.addEventListener('open', () => {
      retry = RETRY_MIN_MS;
      if (auth.token) ws.send(JSON.stringify({ auth: auth.token }));
      for (const t of TOPICS) ws.send(JSON.stringify({ subscribe: t }));
      onState(true);
    });
    ws.addEventListener('message', (e) => {
      let frame;
      try { frame = JSON.parse(e.data); } catch { return; }
      if (!Array.isArray(frame)) {
        if (frame?.auth === 'fail') onState(false, 'auth');
        return;
      }
      for (const ev of frame) onEvent(ev.topic, ev.data);
    });
    ws.addEventListener('close', () => {
      onState(false);
      setTimeout(open, retry);
      retry = Math.min(RETRY_MAX_MS, retry * 2);
    });
  }
  open();
  return { close() { ws?.close(); } };
}
