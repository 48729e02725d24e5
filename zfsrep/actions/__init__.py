"""One module per verb: `run(config, *, now, dry_run, ...) -> RunResult`. Actions never print."""
