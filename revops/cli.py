"""`revops`: run the plugin on the simulated node, or start a stand-in lightningd.

  revops simulate SCENARIO [--days N] [--seed S] [--controller NAME] [--json]
  revops demo [--days N]
  revops node SCENARIO --lightning-dir DIR [--plugin FILE ...] [--speed X]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence

from revops import simulate
from revops.sim.scenario import ScenarioError, load_scenario

PLUGIN_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cl-revenue-ops.py")


def _sats(msat: int) -> str:
    return f"{msat / 1000:,.0f}"


def print_table(result: dict, controller: str) -> None:
    print(f"{'channel':<14} {'name':<14} {'fee ppm':>8} {'local %':>8} {'fees earned sat':>16} {'updates':>8}")
    for c in result["per_channel"]:
        print(f"{c['scid']:<14} {c['name'][:14]:<14} {c['fee_ppm']:>8} {c['local_ratio'] * 100:>7.1f}% "
              f"{_sats(c['fees_earned_msat']):>16} {c['fee_updates']:>8}")
    print()
    print(f"controller {controller}: {result['days']} days, {result['channels']} channels")
    print(f"  fees earned      {_sats(result['fees_earned_msat']):>14} sat")
    print(f"  rebalance cost   {_sats(result['rebalance_cost_msat']):>14} sat")
    print(f"  on-chain cost    {_sats(result['onchain_cost_msat']):>14} sat   ({result['force_closes']} force closes)")
    print(f"  net profit       {_sats(result['net_profit_msat']):>14} sat")
    print(f"  forwards         {result['forwards']:>14,}   failed {result['failed_forwards']:,} "
          f"(liquidity {result['failed_liquidity']:,}, fee {result['failed_fee']:,}), "
          f"priced out {result['priced_out']:,}")
    print(f"  market WTP       {_sats(result['wtp_msat']):>14} sat   (share earned {result['wtp_share'] * 100:.1f} %)")
    print(f"  fee updates      {result['fee_updates']:>14,}   ({result['fee_updates_per_channel_day']} per channel per day)")


def cmd_simulate(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
    except (ScenarioError, OSError) as e:
        print(f"revops simulate: {e}", file=sys.stderr)
        return 2
    result = simulate.run(scenario, args.days, seed=args.seed, controller=args.controller)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print_table(result, args.controller)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the small scenario in-process, then keep a stand-in node with the plugin for the user to query."""
    from revops.sim.lightningd import run_node

    print(f"== revops demo: {args.days} simulated days of the bundled small scenario, in-process ==")
    for controller in ("static", "revops"):
        print_table(simulate.run(load_scenario("small"), args.days, seed=args.seed, controller=controller),
                    controller)
        print()
    base = args.lightning_dir or tempfile.mkdtemp(prefix="revops-demo-")
    rpc_file = os.path.join(base, "regtest", "lightning-rpc")
    print("== now a stand-in lightningd runs the real plugin on the same scenario (1 simulated hour per second) ==")
    print("In another terminal, try:")
    print(f"  python -c \"from pyln.client import LightningRpc as L; import json; "
          f"print(json.dumps(L('{rpc_file}').call('revenue-status'), indent=1))\"")
    print(f"  or, with Core Lightning's lightning-cli: lightning-cli --rpc-file={rpc_file} revenue-status")
    print(f"  or open the status page: http://127.0.0.1:{args.page_port}/")
    print("Press Ctrl-C to stop.", flush=True)
    return run_node(["small", "--lightning-dir", base, "--plugin", PLUGIN_FILE, "--speed", str(args.speed),
                     "--seed", str(args.seed), "--plugin-opt", "revenue-ops-enable-page=true",
                     "--plugin-opt", f"revenue-ops-page-port={args.page_port}"])


def cmd_node(argv: Sequence[str]) -> int:
    from revops.sim.lightningd import run_node
    return run_node(list(argv))


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="revops", description="cl-revenue-ops tools: simulated node and runs.")
    sub = ap.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="run the plugin in-process on a simulated node and print the P&L")
    sim.add_argument("scenario", help="bundled scenario name (small, drifting, large) or a TOML path")
    sim.add_argument("--days", type=float, default=30.0)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--controller", choices=simulate.CONTROLLERS, default="revops",
                     help="revops: this plugin; static: no plugin, the scenario's fees never change")
    sim.add_argument("--json", action="store_true", help="print a JSON object instead of the table")
    demo = sub.add_parser("demo", help="simulate the small scenario, then serve it with the plugin running")
    demo.add_argument("--days", type=float, default=14.0)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--speed", type=float, default=3600.0)
    demo.add_argument("--lightning-dir", default=None)
    demo.add_argument("--page-port", type=int, default=9801, help="port of the status page on 127.0.0.1")
    sub.add_parser("node", help="stand-in lightningd (see `revops node --help`)", add_help=False)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["node"]:
        return cmd_node(argv[1:])
    args = parser().parse_args(argv)
    return {"simulate": cmd_simulate, "demo": cmd_demo}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
