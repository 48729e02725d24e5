"""The commented starter file `zfsrep config init` writes (tomli-w cannot write comments)."""

STARTER_CONFIG = '''\
# zfsrep configuration. Reference: docs/config.md. Check it with `zfsrep config check`.

# Where run results and replication history are kept (read by `status` and `report-result`).
state_dir = "/var/lib/zfsrep"

# Default retention: how many snapshots of each period to keep. A count of 0 means that
# period is never snapshotted. Datasets and targets may override any of these.
[retention]
frequent = 0   # every 15 minutes
hourly = 24
daily = 7
weekly = 4
monthly = 12
yearly = 0

# One [[datasets]] table per dataset to snapshot and replicate.
[[datasets]]
name = "tank/home"
recursive = true            # include every child dataset
# exclude = ["tank/home/cache"]
# retention = { hourly = 48 }
# targets = ["backup"]       # default: every target

# One [targets.NAME] table per place to replicate to (over ssh).
[targets.backup]
host = "backup.example.org"
user = "root"
dataset = "backup/hosts/myhost"   # received as backup/hosts/myhost/<pool>/<path>
# port = 22
# identity_file = "/run/credentials/zfs-replicate.service/ssh-key"
# known_hosts = "/etc/zfsrep/known_hosts"
# compress = "zstd"                # none | zstd | lz4 (both ends need it)
# mbuffer = "256M"
# retention = { daily = 30, monthly = 24 }

# [report.healthchecks]
# url_file = "/run/credentials/zfs-replicate.service/healthchecks-url"

# [status]
# warn = "26h"
# crit = "50h"
'''
