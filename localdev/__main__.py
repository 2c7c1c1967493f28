"""`python -m localdev COMMAND ...`: the local commands (their exact forms are relied on)."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line on stderr and exit status 2 (argparse prints the usage
    first; `--help` still shows it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m localdev")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    route = commands.add_parser("route", help="function ids whose template rules match an event")
    route.add_argument("event_file")

    invoke = commands.add_parser("invoke", help="run one function like `sam local invoke`")
    invoke.add_argument("function_id")
    invoke.add_argument("event_file")
    invoke.add_argument("--env-vars", help="sam --env-vars style JSON file of overrides")
    invoke.add_argument("--conversation", help="seed this conversation (or list) first")
    invoke.add_argument("--external-answer", help="the stub answers every sync with this JSON")

    pipeline = commands.add_parser("pipeline", help="run the chains events start, in order")
    pipeline.add_argument("event_files", nargs="+", metavar="EVENT_FILE")
    pipeline.add_argument("--env-vars", help="sam --env-vars style JSON file of overrides")
    pipeline.add_argument("--conversation", help="seed this conversation (or list) first")
    pipeline.add_argument("--external-answer", help="the stub answers every sync with this JSON")
    pipeline.add_argument(
        "--extra-clients",
        type=int,
        choices=range(5),
        default=0,
        metavar="N",
        help="GenesysExtraClientCount: N more OAuth clients (0-4), conversations pinned to one",
    )
    pipeline.add_argument(
        "--echo-attributes",
        action="store_true",
        help="after each PATCH, send the `attributes` event Genesys would (at most 10)",
    )

    emulator = commands.add_parser("emulator", help="run the Genesys Cloud emulator")
    emulator.add_argument("--port", type=int, default=0)
    emulator.add_argument("--host", default="127.0.0.1")

    external = commands.add_parser("external", help="run the external-system stub")
    external.add_argument("--port", type=int, default=0)
    external.add_argument("--host", default="127.0.0.1")

    commands.add_parser("demo", help="seed a voice call and a web-messaging chat, run the chain")
    commands.add_parser("openapi", help="print the AttributesApi OpenAPI document")

    from localdev.doctor import configure_parser as configure_doctor  # stdlib imports only

    configure_doctor(commands.add_parser("doctor", help="check a deployed stack end to end"))

    args = parser.parse_args(argv)
    # Imports are per command: `route` must not pay for moto or the SDK.
    if args.command == "route":
        from localdev.routing import route_main

        return route_main(args.event_file)
    if args.command == "emulator":
        from localdev.emulator import serve_main

        return serve_main(host=args.host, port=args.port)
    if args.command == "external":
        from localdev.external import serve_main as external_main

        return external_main(host=args.host, port=args.port)
    if args.command in ("invoke", "pipeline"):
        from localdev.runner import UsageError, invoke_main, pipeline_main

        try:
            if args.command == "invoke":
                return invoke_main(
                    args.function_id,
                    args.event_file,
                    args.env_vars,
                    args.conversation,
                    args.external_answer,
                )
            return pipeline_main(
                args.event_files,
                args.env_vars,
                args.conversation,
                args.external_answer,
                args.echo_attributes,
                args.extra_clients,
            )
        except UsageError as error:
            print(f"{args.command}: {error}", file=sys.stderr)
            return 2
    if args.command == "demo":
        from localdev.demo import demo_main

        return demo_main()
    if args.command == "openapi":
        from localdev.runner import openapi_main

        return openapi_main()
    if args.command == "doctor":
        from localdev.doctor import doctor_main

        return doctor_main(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
