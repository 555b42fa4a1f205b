"""The stand-in lightningd around the real SimNode, and the `revops node` entry point (run_node)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyln.client import LightningRpc, RpcError

try:
    from revops.sim.node import SimNode  # noqa: F401
    from revops.sim.scenario import load_scenario

    load_scenario("small")
except Exception as e:  # the simulated node is another module; without it there is nothing to test here
    pytest.skip(f"SimNode / scenario 'small' not available: {e!r}", allow_module_level=True)

from revops.sim.lightningd import StandinLightningd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_standin_lightningd import make_plugin, pid_alive, to_plugin, wait_until  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def test_simnode_behind_the_standin(tmp_path):
    tp = make_plugin(tmp_path)
    trace = []
    with StandinLightningd("small", lightning_dir=str(tmp_path / "ln"), seed=1, speed=0, plugins=[tp],
                           trace=trace, log_stderr=False, handshake_timeout=20) as ld:
        rpc = ld.rpc
        info = rpc.getinfo()
        assert info["lightning-dir"] == ld.network_dir == os.path.dirname(ld.rpc_path)
        assert info["network"] == ld.network
        assert to_plugin(trace, "init")[0]["params"]["configuration"]["network"] == ld.network
        assert rpc.listpeerchannels()["channels"]
        t0 = rpc.call("dev-sim-time")["now"]
        assert rpc.call("dev-sim-advance", {"seconds": 86400}) == {"now": t0 + 86400}
        fwd = [m["params"]["forward_event"] for m in to_plugin(trace, "forward_event")]
        assert fwd, "a day of the small scenario forwards something"
        offered = [f for f in fwd if f["status"] == "offered"]
        resolved = [f for f in fwd if f["status"] in ("settled", "failed")]
        assert len(offered) == len(resolved)
        assert wait_until(lambda: len([e for e in rpc.call("tp-state")["events"]
                                       if e["topic"] == "forward_event"]) == len(fwd))
        ledger = rpc.call("dev-sim-ledger")
        assert isinstance(ledger, dict) and ledger
        names = [p["name"] for p in rpc.plugin_list()["plugins"]]
        assert tp in names and any(n.endswith("/bookkeeper") for n in names)
        # the plugin reads virtual time through the clock contract
        assert rpc.call("tp-clock") == {"now": t0 + 86400, "source": "dev-sim-time"}
        with ld.locked_node() as node:
            assert node.now == t0 + 86400


def _run_node(args, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    code = "import sys; from revops.sim.lightningd import run_node; sys.exit(run_node(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=str(tmp_path), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_socket(path, proc, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"run_node exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        if os.path.exists(path):
            try:
                return LightningRpc(path).call("dev-sim-time")
            except (OSError, RpcError):
                pass
        time.sleep(0.05)
    raise AssertionError("socket never came up")


def test_run_node_cli_sigterm_and_stop(tmp_path):
    tp = make_plugin(tmp_path)
    d = tmp_path / "ln"
    sock = str(d / load_scenario("small").node.network / "lightning-rpc")
    proc = _run_node(["small", "--lightning-dir", str(d), "--plugin", tp, "--plugin-opt", "tp-int=5",
                      "--speed", "3600", "--seed", "2"], tmp_path)
    try:
        t0 = _wait_socket(sock, proc)["now"]
        rpc = LightningRpc(sock)
        # the socket is served before plugins finish init (they need it during init), as in lightningd
        assert wait_until(lambda: any(p["name"] == tp and p["active"] for p in rpc.plugin_list()["plugins"]), 20)
        st = rpc.call("tp-state")
        assert st["init"]["options"]["tp-int"] == 5
        time.sleep(0.5)
        assert rpc.call("dev-sim-time")["now"] > t0
        assert any(p["name"] == tp and p["active"] for p in rpc.plugin_list()["plugins"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert not os.path.exists(sock)
        assert "Shutdown complete" in (Path(sock).parent / "log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()

    proc = _run_node(["small", "--lightning-dir", str(d), "--speed", "0"], tmp_path)
    try:
        _wait_socket(sock, proc)
        assert LightningRpc(sock).stop() == "Shutdown complete"
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()

    proc = _run_node(["small", "--lightning-dir", str(d), "--plugin-opt", "nobody-has-this=1"], tmp_path)
    assert proc.wait(20) == 1
    assert "unrecognized option" in proc.stderr.read().decode()
