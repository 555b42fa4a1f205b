"""lightningd's parse of a plugin option's text, shared by the stand-in's options and the node's `setconfig`.

Core Lightning, lightningd/plugin.c (`plugin_opt_bool_check`, `plugin_opt_long_check`) with ccan/opt
(helpers.c): a `bool` plugin option takes what `opt_set_bool_arg` takes, "yes", "no", "true" or "false"
compared with strcasecmp (any ASCII case); "1" and "0" were deprecated in v23.08 and refused since the end
of that deprecation (v24.08): "boolean plugin arguments must be true or false"; anything else is ccan's
"Invalid argument '<text>'". An `int` takes a base-0 integer (strtol; octal not modelled), else "'<text>' is not a number". None of
these messages names the option: on the command line lightningd prefixes `--<name>=<value>: `, in a config
file `Config file <path> line <n>: <name>=<value>: `, and for `plugin start` it prefixes nothing.
`setconfig` does not parse a plugin option at all: it hands the text to the plugin and, if the plugin
accepts it, writes `<name>=<text>` to config.setconfig, which the next start parses as above.
"""
from __future__ import annotations

import json
from typing import Any

TRUE_WORDS = ("yes", "true")
FALSE_WORDS = ("no", "false")


def option_value(typ: str, text: str) -> Any:
    """The value lightningd gives a plugin for `text` (JSON bool for bool, int for int); ValueError with
    lightningd's own message when it refuses the text."""
    if typ == "bool":
        word = text.lower() if text.isascii() else text
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        if text in ("1", "0"):
            raise ValueError("boolean plugin arguments must be true or false")
        raise ValueError(f"Invalid argument '{text}'")
    if typ == "int":
        try:
            return int(text, 0)
        except ValueError:
            raise ValueError(f"'{text}' is not a number") from None
    if typ == "flag":
        return True
    return text


def json_text(val: Any) -> str:
    """What lightningd's `param_string` makes of a JSON value: a string as it is, anything else its JSON text."""
    if isinstance(val, str):
        return val
    return json.dumps(val)
