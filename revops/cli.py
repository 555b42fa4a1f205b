"""`revops`: run the plugin on the simulated node, start a stand-in lightningd, or read a node's report.

  revops simulate SCENARIO [--days N] [--seed S] [--controller NAME] [--json]
  revops demo [--days N] [--log-level L]
  revops node SCENARIO --lightning-dir DIR [--plugin FILE ...] [--speed X]
  revops report --rpc-file PATH [--days N] [--decisions N]
  revops backtest --rpc-file PATH [--days N] [--seeds K] [--replay-days N] [--json]

Arguments are checked before anything runs; a bad one, a bad scenario file or Ctrl-C ends with one line.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import tomllib
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from revops import simulate
from revops.params import Parser, number
from revops.sim.scenario import SCENARIO_DIR, ScenarioError, load_scenario

PLUGIN_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cl-revenue-ops.py")
LOG_LEVELS = ("debug", "info", "unusual", "broken")


def bundled() -> list[tuple[str, str]]:
    """(name, description) of every scenario shipped in revops/sim/scenarios."""
    out = []
    for path in sorted(SCENARIO_DIR.glob("*.toml")):
        with open(path, "rb") as f:
            out.append((path.stem, str(tomllib.load(f).get("description", ""))))
    return out


def scenario_help() -> str:
    return "bundled scenarios:\n" + "".join(f"  {name:<10} {text}\n" for name, text in bundled())


def _sats(msat: int) -> str:
    return f"{msat / 1000:,.0f}"


def print_table(result: dict, controller: str, console: Console) -> None:
    table = Table(title=f"controller {controller}: {result['days']:g} days, {result['channels']} channels")
    for col in ("channel", "name", "fee ppm", "local %", "fees earned sat", "updates"):
        table.add_column(col, justify="left" if col in ("channel", "name") else "right")
    for c in result["per_channel"]:
        table.add_row(c["scid"], c["name"][:14], str(c["fee_ppm"]), f"{c['local_ratio'] * 100:.1f}%",
                      _sats(c["fees_earned_msat"]), str(c["fee_updates"]))
    console.print(table)
    console.print(f"  fees earned      {_sats(result['fees_earned_msat']):>14} sat\n"
                  f"  rebalance cost   {_sats(result['rebalance_cost_msat']):>14} sat\n"
                  f"  net profit       {_sats(result['net_profit_msat']):>14} sat\n"
                  f"  forwards         {result['forwards']:>14,}   failed {result['failed_forwards']:,} "
                  f"(liquidity {result['failed_liquidity']:,}, fee {result['failed_fee']:,}), "
                  f"priced out {result['priced_out']:,}\n"
                  f"  fee updates      {result['fee_updates']:>14,}   "
                  f"({result['fee_updates_per_channel_day']} per channel per day)", highlight=False)


def run_with_progress(scenario_name: str, days: float, seed: int, controller: str, console: Console) -> dict:
    """simulate.run with a progress bar (on stderr, only when it is a terminal)."""
    scenario = load_scenario(scenario_name)
    columns = (TextColumn(f"{scenario.name} [{controller}]"), BarColumn(), MofNCompleteColumn(),
               TextColumn("simulated days"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("run", total=round(days, 2))
        return simulate.run(scenario, days, seed=seed, controller=controller,
                            on_progress=lambda done, _total: bar.update(task, completed=round(done / 86400, 2)))


def cmd_simulate(args: argparse.Namespace) -> int:
    result = run_with_progress(args.scenario, args.days, args.seed, args.controller, Console())
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print_table(result, args.controller, Console())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the small scenario in-process, then keep a stand-in node with the plugin for the user to query."""
    from revops.sim.launcher import python_wrapper
    from revops.sim.lightningd import run_node

    console = Console()
    console.print(f"== revops demo: {args.days:g} simulated days of the bundled small scenario, in-process ==")
    for controller in ("static", "revops"):
        print_table(run_with_progress("small", args.days, args.seed, controller, console), controller, console)
        console.print()
    base = args.lightning_dir or tempfile.mkdtemp(prefix="revops-demo-")
    try:
        plugin = python_wrapper(PLUGIN_FILE, tempfile.mkdtemp(prefix="plugin-", dir=base))
        rpc_file = os.path.join(base, "regtest", "lightning-rpc")
        console.print("== now a stand-in lightningd runs the real plugin on the same scenario "
                      "(1 simulated hour per second) ==", highlight=False)
        console.print("In another terminal, try:", highlight=False)
        console.print(f"  revops report --rpc-file {rpc_file}", highlight=False)
        console.print(f"  python -c \"from pyln.client import LightningRpc as L; import json; "
                      f"print(json.dumps(L('{rpc_file}').call('revenue-status'), indent=1))\"", highlight=False)
        console.print(f"  or, with Core Lightning's lightning-cli: lightning-cli --rpc-file={rpc_file} revenue-status",
                      highlight=False)
        console.print(f"  or open the status page: http://127.0.0.1:{args.page_port}/", highlight=False)
        console.print(f"Plugin log lines at {args.log_level} and above are shown (--log-level); all of them are in "
                      f"{os.path.join(base, 'regtest', 'log')}. Press Ctrl-C to stop.", highlight=False)
        return run_node(["small", "--lightning-dir", base, "--plugin", plugin, "--speed", str(args.speed),
                         "--seed", str(args.seed), "--log-level", args.log_level,
                         "--plugin-opt", "revenue-ops-enable-page=true",
                         "--plugin-opt", f"revenue-ops-page-port={args.page_port}"])
    finally:
        if args.lightning_dir is None:
            shutil.rmtree(base, ignore_errors=True)


def cmd_node(argv: Sequence[str]) -> int:
    from revops.sim.lightningd import run_node
    return run_node(list(argv))


def cmd_report(args: argparse.Namespace) -> int:
    from revops.report import show
    return show(args.rpc_file, days=args.days, decisions=args.decisions, console=Console())


def cmd_backtest(args: argparse.Namespace) -> int:
    from revops.backtest_show import show
    return show(args.rpc_file, {"days": args.days, "seeds": args.seeds, "replay_days": args.replay_days},
                as_json=args.json, console=Console())


def parser() -> Parser:
    ap = Parser(prog="revops", description="cl-revenue-ops tools: simulated node, runs, and a node's report.")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=Parser)
    days = number(0, lo_open=True)
    sim = sub.add_parser("simulate", help="run the plugin in-process on a simulated node and print the P&L",
                         description="Run the plugin in-process on a simulated node and print the P&L.",
                         epilog=scenario_help(), formatter_class=_HelpFormatter)
    sim.add_argument("scenario", help="a bundled scenario name (below) or the path of a scenario TOML file")
    sim.add_argument("--days", type=days, default=30.0, help="simulated days")
    sim.add_argument("--seed", type=number(0, integer=True), default=0, help="random seed of the market")
    sim.add_argument("--controller", choices=simulate.CONTROLLERS, default="revops",
                     help="revops: this plugin; static: no plugin, the scenario's fees never change")
    sim.add_argument("--json", action="store_true", help="print a JSON object instead of the table")
    demo = sub.add_parser("demo", help="simulate the small scenario, then serve it with the plugin running",
                          description="Simulate the small scenario with and without the plugin, then serve it "
                                      "with the real plugin under a stand-in lightningd.")
    demo.add_argument("--days", type=days, default=14.0, help="simulated days of the in-process comparison")
    demo.add_argument("--seed", type=number(0, integer=True), default=0, help="random seed of the market")
    demo.add_argument("--speed", type=number(0), default=3600.0, help="simulated seconds per real second")
    demo.add_argument("--lightning-dir", default=None, help="keep the node here (default: a temporary directory, "
                                                             "removed on exit)")
    demo.add_argument("--log-level", choices=LOG_LEVELS, default="unusual",
                      help="lowest log level shown on the terminal")
    demo.add_argument("--page-port", type=number(1, integer=True), default=9801,
                      help="port of the status page on 127.0.0.1")
    sub.add_parser("node", help="stand-in lightningd (see `revops node --help`)", add_help=False)
    rep = sub.add_parser("report", help="P&L, per-channel fees and earnings, recent decisions of a running node",
                         description="Read a node running cl-revenue-ops (a real one or `revops demo`/`revops node`) "
                                     "and print its P&L, channels and recent fee decisions as tables.")
    rep.add_argument("--rpc-file", required=True, help="lightningd's RPC socket, e.g. ~/.lightning/bitcoin/lightning-rpc")
    rep.add_argument("--days", type=number(1, integer=True), default=30, help="P&L window, days")
    rep.add_argument("--decisions", type=number(1, integer=True), default=15, help="recent fee decisions shown")
    bt = sub.add_parser("backtest", help="replay the node's history: current fees, ours, best static, side by side",
                        description="Ask a node running cl-revenue-ops for its backtest (revenue-backtest): the market "
                                    "estimated from its stored history, replayed under its current fees, this plugin "
                                    "and the best static fee per channel. See docs/backtest.md.")
    bt.add_argument("--rpc-file", required=True, help="lightningd's RPC socket, e.g. ~/.lightning/bitcoin/lightning-rpc")
    bt.add_argument("--days", type=number(1, integer=True), default=30, help="days of stored history to use")
    bt.add_argument("--seeds", type=number(1, integer=True), default=5, help="demand seeds of the replay")
    bt.add_argument("--replay-days", type=number(1, integer=True), default=None,
                    help="length of each replay (default: the history's)")
    bt.add_argument("--json", action="store_true", help="print the RPC's JSON answer instead of the tables")
    return ap


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in --help, and the scenario list kept as written."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if argv[:1] == ["node"]:
            return cmd_node(argv[1:])
        args = parser().parse_args(argv)
        return {"simulate": cmd_simulate, "demo": cmd_demo, "report": cmd_report,
                "backtest": cmd_backtest}[args.command](args)
    except ScenarioError as e:
        print(f"revops {argv[0]}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nrevops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
