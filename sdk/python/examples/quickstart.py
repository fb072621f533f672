"""Quick start: connect, join a room, publish, and read the message back."""
import asyncio
import os

import arqon

URL = os.environ.get("ARQON_URL", "ws://127.0.0.1:8080/v1/socket")
TOKEN = os.environ["ARQON_TOKEN"]  # export ARQON_TOKEN=$(arq auth gen --tenant dev --sub alice)


async def main() -> None:
    async with arqon.connect(URL, TOKEN) as client:
        print(f"connected as {client.welcome.user_id} of tenant {client.welcome.tenant_id}")
        await client.join("general")
        await client.publish("general", "hello from python")
        message = await client.recv(timeout=5)
        print(f"{message.sender_user_id} in {message.room}: {message.text}")


asyncio.run(main())
