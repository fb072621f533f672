// The README's Node quickstart: connect, join, publish, receive, typed refusals. ARQON_URL and ARQON_TOKEN name the node and the token.
import { connect, PolicyBlocked, InvalidRoom } from 'arqon-sdk';

const url = process.env.ARQON_URL ?? 'ws://127.0.0.1:8080/v1/socket';
const client = await connect(url, process.env.ARQON_TOKEN);
console.log(`connected as ${client.welcome.userId} of ${client.welcome.tenantId}`);

await client.join('lobby', { name: 'quickstart' });
client.onMessage('lobby', (m) => console.log(`${m.senderUserId}: ${m.text}`));
await client.publish('lobby', 'hello from TypeScript');
const echo = await client.nextMessage({ room: 'lobby', timeoutMs: 5000 }); // members get their own messages too
console.log(`delivered at offset ${echo.offset}`);

try {
  await client.join('not a room!');
} catch (error) {
  if (error instanceof InvalidRoom) console.log(`refused: ${error.codeName}`);
}
try {
  await client.publish('lobby', 'this carries malware'); // blocked where a policy forbids it
} catch (error) {
  if (error instanceof PolicyBlocked) console.log(`blocked: ${error.codeName}`);
}
console.log('members:', client.members('lobby').map((m) => m.metadata.name ?? m.userId).join(', '));
client.close();
