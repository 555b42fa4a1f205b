"""Reliability of the real plugin under the stand-in lightningd: the stand-in itself, the RPC socket
vanishing, the stdout framing, a database that cannot be used, kill -9 in the middle of a rebalance."""
from __future__ import annotations

from revops.sim.lightningd import StandinLightningd


def test_a_stopped_standin_leaves_no_thread_accepting_on_its_socket(tmp_path):
    """A stopped stand-in must not answer for the next one (found as a flaky 'lightningd is shutting
    down' in tests/test_plugin_standin.py: the accept thread outlived the socket and took over its fd)."""
    ld = StandinLightningd("small", lightning_dir=str(tmp_path), seed=1, speed=0, log_stderr=False).start()
    accept = next(t for t in ld._threads if t.name == "rpc-accept")
    ld.stop()
    assert not accept.is_alive()
