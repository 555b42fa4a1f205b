"""SocketRpc reads a reply chunk by chunk (revops/node.py): wherever the reads cut it, the reply is the
JSON before the first blank line, also when that blank line straddles two reads."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from revops.node import SocketRpc

RESULT = {"channels": [{"short_channel_id": f"1x{i}x0", "alias": "a\\n\\nb", "n": i} for i in range(300)]}
REPLY = json.dumps({"jsonrpc": "2.0", "id": 1, "result": RESULT}).encode()


def serve(path: str, parts: list[bytes]) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def run() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            for part in parts:
                conn.sendall(part)
                time.sleep(0.01)      # each part a read of its own
    threading.Thread(target=run, daemon=True).start()
    return server


@pytest.mark.parametrize("cuts", [[len(REPLY) + 1], [len(REPLY)], [7, len(REPLY) - 3, len(REPLY) + 1],
                                  list(range(1000, len(REPLY), 1000)) + [len(REPLY) + 1]])
def test_a_reply_cut_anywhere_is_read_whole(tmp_path, cuts):
    """The blank line cut between its two newlines, or arriving alone; what follows it is not read."""
    data = REPLY + b"\n\n" + b'{"next": '
    parts = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
    server = serve(str(tmp_path / "rpc"), parts)
    assert SocketRpc(str(tmp_path / "rpc"), timeout=5).call("listpeerchannels") == RESULT
    server.close()


def test_a_reply_ended_by_the_connection_without_a_blank_line_is_read(tmp_path):
    server = serve(str(tmp_path / "rpc"), [REPLY[:5000], REPLY[5000:]])
    assert SocketRpc(str(tmp_path / "rpc"), timeout=5).call("listpeerchannels") == RESULT
    server.close()
