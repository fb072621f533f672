// The chat example's script: connects with arqon-sdk's browser bundle, joins a room, shows members and messages, sends what is typed.
import { connect, ArqonError } from './dist/arqon.js';

const $ = (id) => document.getElementById(id);
let client = null;
let room = '';

function setStatus(text, state) {
  $('status').textContent = text;
  $('status').dataset.state = state;
}

function showMembers() {
  const list = $('members');
  list.replaceChildren(
    ...client.members(room).map((m) => {
      const item = document.createElement('li');
      item.textContent = m.metadata.name || m.userId;
      item.dataset.user = m.userId;
      return item;
    }),
  );
}

function showMessage(message) {
  const item = document.createElement('li');
  item.textContent = `${message.senderUserId}: ${message.text}`;
  item.dataset.user = message.senderUserId;
  if (message.senderSessionId === client.welcome?.sessionId) item.className = 'me';
  $('log').append(item);
}

async function start(url, token, name) {
  client?.close();
  setStatus('connecting…', 'connecting');
  try {
    client = await connect(url, token);
    client.on('presence', (event) => {
      if (event.room === room) showMembers();
    });
    client.onMessage(room, showMessage);
    client.on('disconnected', () => setStatus('reconnecting…', 'connecting'));
    client.on('connected', (welcome) => setStatus(`connected as ${welcome.userId}`, 'open'));
    client.on('closed', ({ code }) => setStatus(`closed (${code})`, 'error'));
    await client.join(room, name ? { name } : {});
    showMembers();
    setStatus(`connected as ${client.welcome.userId} in ${room}`, 'open');
    $('text').disabled = false;
    $('send-button').disabled = false;
  } catch (error) {
    setStatus(`failed: ${error instanceof ArqonError ? error.message : String(error)}`, 'error');
  }
}

$('connect').addEventListener('submit', (event) => {
  event.preventDefault();
  room = $('room').value;
  void start($('url').value, $('token').value, $('name').value);
});

$('send').addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = $('text').value;
  if (!text || !client) return;
  try {
    await client.publish(room, text);
    $('text').value = '';
  } catch (error) {
    setStatus(`not sent: ${error.name}`, 'error');
  }
});

// `#url=…&token=…&room=…&name=…` fills the form and connects (the fragment never leaves the browser).
const params = new URLSearchParams(location.hash.slice(1));
for (const field of ['url', 'token', 'room', 'name']) if (params.has(field)) $(field).value = params.get(field);
if (params.has('token')) $('connect').requestSubmit();
