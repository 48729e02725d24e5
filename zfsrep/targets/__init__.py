"""The target: everything about the machines and datasets that receive the copies, in one room.

* `select`: what a copy is called on a target, which targets and datasets a run means, the one
  coverage rule (does an entry cover a dataset) and the one unknown-target error;
* `access`: reaching a target — where to ssh (`ssh_host`), the ssh session the "getting data
  back" verbs use (`connector`, `Session`), warming an on-demand target up for it under its lock;
* `record`: the warmup record (what warmup did, for replicate and teardown) in the state dir;
* `lifecycle`: up, down and reap of one on-demand target, dispatching on the warmup's kind to
  one module per kind, each with its up and down: `ec2` (and its reap) and `command`;
* `progress`: what an up or down goes through whatever the kind (clocks, the record kept as it
  goes, the host part once the machine runs, the result item);
* `pool`: importing and exporting the target's pool;
* `user_commands`: the commands a warmup table names (local and remote);
* `readiness`: waiting until a warmed-up target answers ssh with its pinned key;
* `serve`: the target's side, `zfsrep serve`: the forced command of an append-only target
  (runs what `core.serve_policy` allows of SSH_ORIGINAL_COMMAND).

Nothing here imports `zfsrep.actions` or `zfsrep.cli`; `select` imports only
`zfsrep.config.model`, `zfsrep.errors` and `zfsrep.core`. boto3 (through `zfsrep.ec2`) is
imported only when an EC2 target is brought up, down or reaped. The target locks stay in
`zfsrep.lock` with the snapshot verb's config lock: one flock mechanism, several users.
"""
