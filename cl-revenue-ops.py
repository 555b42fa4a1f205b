#!/usr/bin/env python3
"""cl-revenue-ops: the file lightningd runs.

It builds the pyln Plugin, registers options, RPC methods and subscriptions, and starts the runtime.
Everything else lives in the `revops` and `actors` packages.
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))  # run straight from a checkout too

from revops import plugin_main  # noqa: E402

plugin = plugin_main.RevopsPlugin()
app = plugin_main.App(plugin)

for option in plugin_main.plugin_options(app.on_option_change):
    plugin.add_option(**option)
for name, handler in plugin_main.rpc_methods(app):
    plugin.add_method(name, handler, background=True)
for topic in plugin_main.SUBSCRIPTIONS:
    plugin.add_subscription(topic, app.notification_handler)
plugin.add_subscription("shutdown", app.on_shutdown)


@plugin.init()
def init(options, configuration, plugin, **kwargs):
    return app.init(options, configuration)


signal.signal(signal.SIGTERM, app.on_sigterm)
signal.signal(signal.SIGINT, signal.SIG_IGN)   # lightningd owns our lifetime: a Ctrl-C meant for it ends us by EOF
plugin.run()
app.stop("stdin closed: lightningd is gone")
