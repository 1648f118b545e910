"""Drives `portscope mcp` with the Python MCP SDK, a real MCP client, over stdio.

    python3 mcp_client.py PORTSCOPE [SERVER ARGS...] < calls.json

Reads a JSON list of calls ({"tool": NAME, "args": {...}}) from stdin, starts the server with
this environment, initializes, lists the tools, makes each call in order and prints one JSON
object: the server's name, the tools (name, input and output schemas, annotations) and, per
call, the result (is_error, structured content, text, _meta) or the protocol error. The SDK
checks every structured result against the tool's output schema; a mismatch is recorded as the
call's client_error.
"""
import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import McpError


async def main():
    calls = json.load(sys.stdin)
    params = StdioServerParameters(
        command=sys.argv[1], args=sys.argv[2:], env=dict(os.environ)
    )
    out = {"calls": []}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = init.serverInfo.name
            out["instructions"] = init.instructions
            tools = await session.list_tools()
            out["tools"] = [
                {
                    "name": t.name,
                    "description": t.description,
                    "input_schema": t.inputSchema,
                    "output_schema": t.outputSchema,
                    "read_only": t.annotations.readOnlyHint if t.annotations else None,
                    "destructive": t.annotations.destructiveHint if t.annotations else None,
                }
                for t in tools.tools
            ]
            for call in calls:
                entry = {"tool": call["tool"]}
                try:
                    result = await session.call_tool(call["tool"], call.get("args", {}))
                    entry["is_error"] = bool(result.isError)
                    entry["structured"] = result.structuredContent
                    entry["text"] = "".join(
                        c.text for c in result.content if getattr(c, "type", "") == "text"
                    )
                    entry["meta"] = result.meta or {}
                except McpError as e:
                    entry["protocol_error"] = str(e)
                except RuntimeError as e:
                    entry["client_error"] = str(e)
                out["calls"].append(entry)
    print(json.dumps(out))


asyncio.run(main())
