#!/usr/bin/env python3
"""A minimal pyln-client plugin for the stand-in lightningd tests.

Its behaviour is chosen by STANDIN_TEST_VARIANT (set by the executable wrapper
the tests write, whose shebang is the test interpreter):
  plain      options + methods + forward_event/block_added subscriptions
  shutdown   plain + a `shutdown` subscription that exits cleanly
  disable    answers init with {"disable": ...}
  static     dynamic=False
  hook       plain + the htlc_accepted hook
"""
import json
import os
import sys
import threading
import time

from pyln.client import Plugin

VARIANT = os.environ.get("STANDIN_TEST_VARIANT", "plain")
# method and option names start with this, so two copies can run side by side
P = os.environ.get("STANDIN_TEST_PREFIX", "tp")
plugin = Plugin(dynamic=(VARIANT != "static"))

plugin.add_option(P + "-string", "hello", "a string option")
plugin.add_option(P + "-int", 7, "an int option", opt_type="int")
plugin.add_option(P + "-bool", False, "a bool option", opt_type="bool")
plugin.add_option(P + "-flag", None, "a flag option", opt_type="flag")

STATE = {"init": None, "events": [], "env": {}, "cwd": None}


@plugin.init()
def init(options, configuration, plugin, **kwargs):
    STATE["init"] = {"options": options, "configuration": configuration}
    STATE["cwd"] = os.getcwd()
    STATE["env"] = {k: os.environ.get(k) for k in ("LIGHTNINGD_PLUGIN", "LIGHTNINGD_VERSION", "REVOPS_SIM_CLOCK")}
    plugin.log("standin test plugin initialised", level="info")
    if VARIANT == "disable":
        return {"disable": "told to disable"}


@plugin.method(P + "-echo")
def tp_echo(plugin, value=None, **kwargs):
    """Return what was given."""
    return {"value": value}


@plugin.method(P + "-state")
def tp_state(plugin):
    """What the plugin saw: init, env, cwd, notifications."""
    return STATE


@plugin.method(P + "-fail")
def tp_fail(plugin):
    """Raise, so pyln replies with a JSON-RPC error."""
    raise ValueError(P + "-fail failed on purpose")


@plugin.method(P + "-garbage")
def tp_garbage(plugin):
    """Write bytes that are not JSON to stdout (fd 1)."""
    os.write(1, b"this is not json\n")
    time.sleep(5)
    return {}


@plugin.method(P + "-sleep")
def tp_sleep(plugin, seconds=5):
    """Sleep before replying."""
    time.sleep(float(seconds))
    return {"slept": seconds}


@plugin.method(P + "-clock")
def tp_clock(plugin):
    """Read the time the way the clock contract says: via REVOPS_SIM_CLOCK's RPC."""
    method = os.environ.get("REVOPS_SIM_CLOCK")
    if not method:
        return {"now": int(time.time()), "source": "wall"}
    return {"now": plugin.rpc.call(method)["now"], "source": method}


@plugin.subscribe("forward_event")
def on_forward_event(plugin, **kwargs):
    STATE["events"].append({"topic": "forward_event", "kwargs": kwargs})


@plugin.subscribe("block_added")
def on_block_added(plugin, **kwargs):
    STATE["events"].append({"topic": "block_added", "kwargs": kwargs})


if VARIANT == "shutdown":
    @plugin.subscribe("shutdown")
    def on_shutdown(plugin, **kwargs):
        plugin.log("tp got shutdown, exiting", level="info")
        sys.stdout.flush()
        os._exit(0)


if VARIANT == "hook":
    @plugin.hook("htlc_accepted")
    def on_htlc_accepted(plugin, **kwargs):
        STATE["events"].append({"topic": "htlc_accepted", "kwargs": kwargs})
        return {"result": "continue"}


plugin.run()
