"""`rfmlake identity export-neptune`: the identity graph as Neptune bulk-load CSV (docs/identity.md)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("identity", help="the identity graph: one person across records, devices, logs",
                                   description="Work with gold.identity_graph (docs/identity.md).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export-neptune", help="write the graph as Amazon Neptune bulk-load CSV (vertices.csv, edges.csv)",
        description="Write gold.identity_graph in Neptune's Gremlin bulk-load CSV format: people and members as "
                    "vertices, member_of and linked_by edges. Copy the folder to S3 and start the Neptune loader.")
    export.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder")
    export.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder to write the two files into")
    export.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from rfmlake.identity.neptune import export_neptune
    from rfmlake.lake import Lake

    written = export_neptune(Lake(args.lake), args.out)
    print(f"{written.vertex_count:,} vertices -> {written.vertices}")
    print(f"{written.edge_count:,} edges -> {written.edges}")
    return 0
