"""``python -m jnn.port INPUT -o OUTPUT``: port a PyTorch file or package directory to jnn."""

from __future__ import annotations

import argparse
import pathlib
import sys

from jnn.port import port_file, port_source, port_tree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jnn.port", description=__doc__.splitlines()[0])
    parser.add_argument("input", type=pathlib.Path, help="a .py file or a package directory")
    parser.add_argument("-o", "--output", type=pathlib.Path,
                        help="where to write (a file for a file, a directory for a directory); default: stdout")
    args = parser.parse_args(argv)
    if not args.input.exists():
        parser.error(f"{args.input} does not exist")
    if args.input.is_dir():
        if args.output is None:
            parser.error("porting a directory needs -o OUT_DIR")
        reports = port_tree(args.input, args.output)
    elif args.output is None:
        sys.stdout.write(port_source(args.input.read_text(encoding="utf-8"), str(args.input)))
        return 0
    else:
        reports = port_file(args.input, args.output)
    print(f"jnn.port: wrote {args.output} ({len(reports)} note{'s' * (len(reports) != 1)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
