"""The target: everything about the machines and datasets that receive the copies, in one room.

Planned modules (issue 19); only `select` exists so far, the rest still lives in `zfsrep.actions`
(`target_access`, `warmup`, `teardown`, `ondemand`), `zfsrep.warmup_state`, `zfsrep.readiness`
and `zfsrep.lock`:

* `select`: what a copy is called on a target, which targets and datasets a run means, the one
  coverage rule (does an entry cover a dataset) and the one unknown-target error;
* `access`: reaching a target — ssh session, connector, lock, ssh host;
* `record`: the warmup record (what warmup did, for replicate and teardown);
* `lifecycle`: up and down, dispatching on the warmup's kind;
* one module per kind (`ec2`, `command`), each with its up, down and reap;
* `pool`: importing and exporting the target's pool;
* `readiness`: waiting until a warmed-up target answers.

Nothing here imports `zfsrep.actions` or `zfsrep.cli`; `select` imports only
`zfsrep.config.model`, `zfsrep.errors` and `zfsrep.core`.
"""
