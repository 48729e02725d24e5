from zfsrep.core.pool_status import parse_pool_status

CLEAN = """  pool: backup
 state: ONLINE
  scan: scrub repaired 0B in 00:00:02 with 0 errors on Sun Nov 22 05:10:11 2026
config:

\tNAME        STATE     READ WRITE CKSUM
\tbackup      ONLINE       0     0     0
\t  vdb       ONLINE       0     0     0

errors: No known data errors
"""

DAMAGED = """  pool: backup
 state: ONLINE
status: One or more devices has experienced an error resulting in data
\tcorruption.  Applications may be affected.
action: Restore the file in question if possible.  Otherwise restore the
\tentire pool from backup.
   see: https://openzfs.github.io/openzfs-docs/msg/ZFS-8000-8A
  scan: scrub repaired 0B in 00:00:01 with 2 errors on Sun Nov 22 05:12:00 2026
config:

\tNAME        STATE     READ WRITE CKSUM
\tbackup      ONLINE       0     0     0
\t  vdb       ONLINE       0     0     4

errors: Permanent errors have been detected in the following files:

        /backup/h/tank/data/big.bin
        backup/h/tank/data@s1:/big.bin
"""

RUNNING = """  pool: backup
 state: ONLINE
  scan: scrub in progress since Sun Nov 22 05:20:00 2026
\t1.20G scanned at 300M/s, 600M issued at 150M/s, 2.00G total
\t0B repaired, 29.30% done, 00:00:09 to go
config:

\tNAME        STATE     READ WRITE CKSUM
\tbackup      ONLINE       0     0     0
\t  vdb       ONLINE       0     0     0

errors: No known data errors
"""


def test_clean_scrub():
    s = parse_pool_status("backup", CLEAN)
    assert s.healthy and s.finished and not s.scrubbing and s.repaired == "0B" and s.problems() == []


def test_damaged_pool_names_the_files():
    s = parse_pool_status("backup", DAMAGED)
    assert not s.healthy and s.scan_errors == 2 and s.cksum == 4 and s.data_errors == 2
    assert s.error_files[0] == "/backup/h/tank/data/big.bin"
    assert "Restore the file" in s.action
    text = "; ".join(s.problems())
    assert "2 error(s)" in text and "4 checksum" in text and "big.bin" in text


def test_running_scrub():
    s = parse_pool_status("backup", RUNNING)
    assert s.scrubbing and not s.finished and s.percent == 29.3 and s.healthy


def test_degraded_state_and_counted_errors():
    text = CLEAN.replace("state: ONLINE", "state: DEGRADED").replace(
        "No known data errors", "3 data errors, use '-v' for a list")
    s = parse_pool_status("backup", text)
    assert not s.healthy and s.state == "DEGRADED" and s.data_errors == 3
