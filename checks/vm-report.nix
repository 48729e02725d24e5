# report-result as ExecStopPost: the target also runs a tiny HTTP sink; a successful
# replication posts success, so do zfs-verify and zfs-scrub-targets, and with the target's sshd
# stopped the failed run posts failure with systemd's SERVICE_RESULT. The webhook URL is a
# credential, which ExecStopPost reads from the copy the unit kept (systemd hides it there).
# Mirrored by tests/integration/test_systemd_lab.py.
{ zfsrepTest, ... }:
let
  sink = zfsrepTest.pkgs.writers.writePython3 "zfsrep-test-sink" { } ''
    import http.server
    import pathlib

    OUT = pathlib.Path("/var/lib/sink")


    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            n = len(list(OUT.glob("*.json")))
            (OUT / f"{n:03d}.json").write_bytes(body)
            self.send_response(200)
            self.end_headers()


    OUT.mkdir(exist_ok=True)
    http.server.HTTPServer(("0.0.0.0", 8080), Sink).serve_forever()
  '';
in
{
  name = "zfsrep-report";

  nodes.source = {
    imports = [
        (zfsrepTest.zfsNode { hostId = "5a11ce02"; })
        zfsrepTest.source
      ];
      environment.etc."zfsrep-test/webhook-url" = {
        text = "http://target:8080/hook";
        mode = "0400";
      };
      services.zfsrep.credentials.webhookUrl = "/etc/zfsrep-test/webhook-url";
      services.zfsrep.verify = {
        enable = true;
        onCalendar = "yearly";
      };
      services.zfsrep.scrub = {
        enable = true;
        onCalendar = "yearly";
      };
    };
  nodes.target = {
      imports = [
        (zfsrepTest.zfsNode { hostId = "7a26e702"; })
        zfsrepTest.target
      ];
      networking.firewall.allowedTCPPorts = [ 8080 ];
      systemd.services.sink = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig.ExecStart = sink;
      };
    };

  testScript =
    zfsrepTest.setupPools
    + ''
      import json

      def events(verb="replicate"):
          names = target.succeed("ls /var/lib/sink").split()
          found = [json.loads(target.succeed(f"cat /var/lib/sink/{n}")) for n in sorted(names)]
          return [e for e in found if e.get("verb") == verb]

      def new_event(before, verb="replicate"):
          # report-result runs in ExecStopPost, before `systemctl start` returns; poll anyway
          retry(lambda _: len(events(verb)) > before, timeout=60)
          return events(verb)[-1]

      target.wait_for_unit("sink.service")
      target.wait_for_open_port(8080)

      with subtest("a good run reports success"):
          source.succeed("systemctl start zfs-snapshot.service")
          source.succeed("systemctl start zfs-replicate.service")
          last = new_event(0)
          assert last["success"] is True, last
          assert last["service_result"] == "success", last

      with subtest("verify and scrub report too"):
          source.succeed("systemctl start zfs-verify.service")
          verified = new_event(0, "verify")
          assert verified["success"] is True and verified["items"][0]["status"] == "ok", verified
          source.succeed("systemctl start zfs-scrub-targets.service")
          scrubbed = new_event(0, "scrub")
          assert scrubbed["success"] is True and scrubbed["items"][0]["target"] == "target", scrubbed

      with subtest("a run with the target down reports failure"):
          target.succeed("systemctl stop sshd.service sshd.socket || systemctl stop sshd.service")
          before = len(events())
          source.fail("systemctl start zfs-replicate.service")
          last = new_event(before)
          assert last["success"] is False, last
          assert last["service_result"] == "exit-code", last
    '';
}
