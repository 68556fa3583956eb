"""cllavioctl doctor against private Postfix configuration dirs written wrong in each way of
issue 12 and then fixed: each time `doctor --json` reports the finding id with its severity
and exit code, the test runs the fix commands doctor printed (postconf -c DIR ..., chmod,
chown) or repairs what has no Postfix fix itself, and doctor no longer reports it.

Postfix does not run: postconf reads a config dir without a running Postfix. The milter and
the harness's HTTPS API server (its own CA) run, for the connect and API probes. Signer config
files come from a fixture dir (CLLAVIO_DOCTOR_SYSCONFDIR replaces /etc for them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import unittest

from harness import DEFAULT_CTL, Harness, free_port

FIXABLE = ("postconf ", "chmod ", "chown ")
EXIT = {"error": 2, "warning": 1, "info": 0}


class DoctorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A right configuration: timeouts large enough, default_action set deliberately.
        cls.h = Harness(milter="unix", api=True, default_action="accept",
                        postfix_main={"milter_command_timeout": "30s", "milter_content_timeout": "3m"})
        try:
            cls.h.api.start()
            cls.h.milter.start()
        except BaseException:
            cls.h.close()
            raise
        cls.etc = cls.h.etc_dir
        cls.sysconf = os.path.join(cls.h.dir, "sysconf")
        os.makedirs(cls.sysconf)
        cls.main_cf = os.path.join(cls.etc, "main.cf")
        cls.master_cf = os.path.join(cls.etc, "master.cf")
        cls.saved = {}
        for p in (cls.main_cf, cls.master_cf, cls.h.config_path):
            with open(p) as f:
                cls.saved[p] = f.read()
        cls.saved_settings = dict(cls.h.milter.settings)

    @classmethod
    def tearDownClass(cls):
        cls.h.close()

    def tearDown(self):
        for p, text in self.saved.items():
            with open(p, "w") as f:
                f.write(text)
        self.h.milter.settings = dict(self.saved_settings)
        os.chmod(os.path.join(self.h.cllavio_dir, "secrets.toml"), 0o600)
        for name in os.listdir(self.sysconf):
            p = os.path.join(self.sysconf, name)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)

    # ------------------------------------------------------------------ helpers

    def doctor(self, *extra, config=None):
        # Postfix's config reader waits while main.cf looks freshly written (postconf sleeps
        # 300 ms a few times): the files written a moment ago are dated back, as an admin's are.
        self.age_configs()
        env = dict(os.environ, CLLAVIO_DOCTOR_SYSCONFDIR=self.sysconf)
        r = subprocess.run([DEFAULT_CTL, "-c", config or self.h.config_path, "doctor", "-C", self.etc, "--json", *extra],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertIn(r.returncode, (0, 1, 2), r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["exit"], r.returncode)
        return r.returncode, out["findings"]

    def age_configs(self, etc=None):
        etc = etc or self.etc
        for p in (os.path.join(etc, "main.cf"), os.path.join(etc, "master.cf")):
            t = os.path.getmtime(p)
            os.utime(p, (t - 60, t - 60))

    def postconf(self, *args):
        self.age_configs()
        subprocess.run(["postconf", "-c", self.etc, *args], check=True, capture_output=True, timeout=30)

    def milter_settings(self, settings):
        self.h.milter.write_config(settings=settings)

    def broken(self, fid, severity, *, exit_code=None):
        """doctor reports fid with severity (and the exit code it implies); returns those findings."""
        rc, findings = self.doctor()
        hits = [f for f in findings if f["id"] == fid and f["severity"] == severity]
        self.assertTrue(hits, f"{fid} [{severity}] not reported: {json.dumps(findings, indent=1)}")
        self.assertEqual(rc, EXIT[severity] if exit_code is None else exit_code, json.dumps(findings, indent=1))
        for f in hits:
            self.assertTrue(f["title"] and f["why"], f)
            if f["instance"]:
                self.assertEqual(f["instance"], self.etc)
        return hits

    def run_fixes(self, hits, *, expect_fix=True):
        ran = 0
        for f in hits:
            for line in f["fix"].splitlines():
                if line.startswith(FIXABLE):
                    if line.startswith("postconf "):
                        self.assertIn(f"-c {f['instance']} ", line)  # not /etc/postfix: the instance's dir
                    self.age_configs()
                    subprocess.run(line, shell=True, check=True, capture_output=True, timeout=30)
                    ran += 1
        if expect_fix:
            self.assertGreater(ran, 0, f"no fix command printed: {hits}")

    def fixed(self, fid):
        rc, findings = self.doctor()
        bad = [f for f in findings if f["id"] == fid and f["severity"] not in ("ok", "info")]
        self.assertFalse(bad, json.dumps(bad, indent=1))
        self.assertEqual(rc, 0, json.dumps([f for f in findings if f["severity"] in ("warning", "error")], indent=1))

    def break_and_fix(self, fid, severity, *, exit_code=None):
        hits = self.broken(fid, severity, exit_code=exit_code)
        self.run_fixes(hits)
        self.fixed(fid)
        return hits

    # ------------------------------------------------------------------ the right config

    def test_right_configuration_exits_0(self):
        rc, findings = self.doctor()
        self.assertEqual(rc, 0, json.dumps(findings, indent=1))
        ids = {f["id"] for f in findings if f["severity"] == "ok"}
        for fid in ("milter.not_in_smtpd_milters", "milter.not_in_non_smtpd_milters", "socket.connect",
                    "api.unreachable", "config.invalid", "protocol.old"):
            self.assertIn(fid, ids)
        # The text form: one block per finding, a summary line.
        env = dict(os.environ, CLLAVIO_DOCTOR_SYSCONFDIR=self.sysconf)
        r = subprocess.run([DEFAULT_CTL, "-c", self.h.config_path, "doctor", "-C", self.etc], capture_output=True,
                           text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"(?m)^ok +socket\.connect: user postfix connects to unix:")
        self.assertRegex(r.stdout, r"(?m)^\d+ ok, \d+ info, 0 warning\(s\), 0 error\(s\): exit 0$")

    def test_not_a_postfix_dir(self):
        env = dict(os.environ, CLLAVIO_DOCTOR_SYSCONFDIR=self.sysconf)
        empty = os.path.join(self.h.dir, "empty-etc")
        os.makedirs(empty, exist_ok=True)
        r = subprocess.run([DEFAULT_CTL, "-c", self.h.config_path, "doctor", "-C", empty, "--json", "--offline"],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 2)
        [f] = [f for f in json.loads(r.stdout)["findings"] if f["id"] == "postfix.unreadable"]
        self.assertEqual(f["severity"], "error")
        self.assertIn("no main.cf", f["title"])

    def test_every_instance_of_a_multi_instance_postfix(self):
        etc2 = os.path.join(self.h.dir, "etc-out")
        shutil.rmtree(etc2, ignore_errors=True)
        shutil.copytree(self.etc, etc2)
        try:
            subprocess.run(["postconf", "-c", etc2, "-e", "multi_instance_name = postfix-out",
                            "milter_protocol = 4"], check=True, timeout=30)
            self.postconf("-e", "multi_instance_enable = yes", f"multi_instance_directories = {etc2}")
            rc, findings = self.doctor()
            self.assertEqual(rc, 2)
            bad = [f for f in findings if f["severity"] not in ("ok", "info")]
            self.assertEqual([(f["id"], f["instance"]) for f in bad], [("protocol.old", etc2)], bad)
            self.assertEqual(bad[0]["fix"], f"postconf -c {etc2} -e 'milter_protocol = 6'")
            self.assertIn(("postfix.unreadable", self.etc), [(f["id"], f["instance"]) for f in findings])
            self.age_configs(etc2)
            self.run_fixes(bad)
            self.age_configs(etc2)
            self.fixed("protocol.old")
        finally:
            shutil.rmtree(etc2, ignore_errors=True)

    # ------------------------------------------------------------------ milter lists

    def test_missing_from_smtpd_milters(self):
        self.postconf("-e", "smtpd_milters =")
        self.break_and_fix("milter.not_in_smtpd_milters", "error")

    def test_libmilter_syntax(self):
        self.postconf("-e", f"smtpd_milters = {self.h.milter_addr_postfix}, inet:12345@127.0.0.1")
        [f] = self.break_and_fix("milter.libmilter_syntax", "error")
        self.assertIn("inet:127.0.0.1:12345", f["fix"])

    def test_missing_from_non_smtpd_milters(self):
        self.postconf("-e", "non_smtpd_milters =")
        self.break_and_fix("milter.not_in_non_smtpd_milters", "warning")

    def test_submission_drops_the_milter(self):
        self.postconf("-M", "submission/inet=submission inet n - n - - smtpd")
        self.postconf("-P", "submission/inet/smtpd_milters=")
        self.break_and_fix("milter.service_drops", "error")
        self.postconf("-P", "submission/inet/receive_override_options=no_milters")
        self.break_and_fix("milter.service_drops", "error")

    def test_reinjection_service_without_milters_is_info(self):
        self.postconf("-M", "127.0.0.1:10025/inet=127.0.0.1:10025 inet n - n - - smtpd")
        self.postconf("-P", "127.0.0.1:10025/inet/receive_override_options=no_milters")
        hits = self.broken("milter.service_drops", "info")
        self.assertIn("10025", hits[0]["title"] + hits[0]["why"])

    def test_no_milters_in_main_cf(self):
        self.postconf("-e", "receive_override_options = no_milters")
        self.break_and_fix("milter.no_milters_main", "warning")

    def test_milter_maps(self):
        self.postconf("-e", f"smtpd_milter_maps = cidr:{self.etc}/milter_maps.cidr")
        hits = self.broken("milter.maps", "warning")
        self.assertIn("postmap -q", hits[0]["why"])
        self.postconf("-X", "smtpd_milter_maps")
        self.fixed("milter.maps")

    def test_after_an_opendkim_signer(self):
        with open(os.path.join(self.sysconf, "opendkim.conf"), "w") as f:
            f.write("Syslog yes\nSocket inet:12301@localhost\n")
        self.postconf("-e", f"smtpd_milters = inet:127.0.0.1:12301, {self.h.milter_addr_postfix}")
        [f] = self.break_and_fix("milter.after_signer", "error")
        self.assertIn("opendkim", f["title"] + f["why"])
        # rspamd's proxy from its worker-proxy.inc, in non_smtpd_milters this time.
        os.makedirs(os.path.join(self.sysconf, "rspamd", "local.d"))
        with open(os.path.join(self.sysconf, "rspamd", "local.d", "worker-proxy.inc"), "w") as f:
            f.write('milter = yes;\nbind_socket = "localhost:11400";\n')
        self.postconf("-e", f"non_smtpd_milters = inet:localhost:11400 {self.h.milter_addr_postfix}")
        [f] = self.break_and_fix("milter.after_signer", "error")
        self.assertIn("rspamd", f["title"] + f["why"])

    # ------------------------------------------------------------------ the socket

    def test_chrooted_smtpd_cannot_see_the_socket(self):
        svc = f"127.0.0.1:{self.h.smtp_port}/inet"
        self.postconf("-F", f"{svc}/chroot = y")
        hits = self.broken("socket.not_in_chroot", "error")
        self.assertIn(self.h.spool_dir, hits[0]["title"] + hits[0]["why"])
        # The socket lies outside the queue directory: no postconf line can fix that; chroot off.
        self.run_fixes(hits, expect_fix=False)
        self.postconf("-F", f"{svc}/chroot = n")
        self.fixed("socket.not_in_chroot")

    def test_postfix_cannot_connect(self):
        run_dir = os.path.dirname(self.h.milter_socket)
        mode = os.stat(run_dir).st_mode & 0o7777
        os.chmod(run_dir, 0o700)
        try:
            hits = self.broken("socket.connect", "error")
            self.assertIn("Permission denied", hits[0]["title"])
        finally:
            os.chmod(run_dir, mode)
        self.fixed("socket.connect")

    # ------------------------------------------------------------------ milter_* parameters

    def test_default_action_reject(self):
        self.postconf("-e", "milter_default_action = reject")
        self.break_and_fix("default_action.reject", "warning")

    def test_protocol_5(self):
        self.postconf("-e", "milter_protocol = 5")
        self.break_and_fix("protocol.old", "error")

    def test_short_timeouts(self):
        self.postconf("-e", "milter_command_timeout = 5s", "milter_content_timeout = 30")
        hits = self.broken("timeout.command", "warning")
        self.broken("timeout.content", "warning")
        self.run_fixes(hits)
        rc, findings = self.doctor()
        content = [f for f in findings if f["id"] == "timeout.content" and f["severity"] == "warning"]
        self.run_fixes(content)
        self.fixed("timeout.command")
        self.fixed("timeout.content")

    def test_macros(self):
        # Below protocol 6 the milter cannot ask for {auth_authen} itself: milter_mail_macros must carry it.
        self.postconf("-e", "milter_mail_macros = i {mail_addr}", "milter_protocol = 4")
        hits = self.broken("macros.auth_authen", "error")
        self.run_fixes(hits + self.broken("protocol.old", "error"))
        self.fixed("macros.auth_authen")
        # With protocol 6 it asks at negotiation, whatever milter_mail_macros says.
        self.postconf("-e", "milter_mail_macros = i {mail_addr}")
        self.fixed("macros.auth_authen")
        self.postconf("-e", "milter_end_of_data_macros =")
        self.break_and_fix("macros.queue_id", "warning")

    # ------------------------------------------------------------------ the milter's side

    def test_delivery_needs_long_queue_ids_and_a_readable_log(self):
        log = os.path.join(self.h.dir, "delivery-test.log")
        with open(log, "w") as f:
            f.write("")
        os.chmod(log, 0o600)  # root's; the milter runs as nobody
        self.milter_settings({"delivery.log": log})
        self.broken("delivery.log", "error")
        hits = self.broken("delivery.long_queue_ids", "error")
        self.run_fixes(hits)
        os.chmod(log, 0o644)  # no Postfix fix for the log's mode: the admin's remedy
        self.fixed("delivery.long_queue_ids")
        self.fixed("delivery.log")

    def test_secrets_mode(self):
        secrets = os.path.join(self.h.cllavio_dir, "secrets.toml")
        os.chmod(secrets, 0o644)
        hits = self.break_and_fix("secrets.mode", "error")
        self.assertIn("chmod 600", hits[0]["fix"])
        self.assertEqual(os.stat(secrets).st_mode & 0o777, 0o600)

    def test_invalid_milter_config(self):
        self.milter_settings({"milter.on_error": "sometimes"})
        hits = self.broken("config.invalid", "error")
        self.assertIn("on_error", hits[0]["title"] + hits[0]["why"])

    def test_api_unreachable(self):
        self.milter_settings({"api.url": f"https://127.0.0.1:{free_port()}"})
        hits = self.broken("api.unreachable", "error")
        self.assertIn("127.0.0.1", hits[0]["title"])
        rc, findings = self.doctor("--offline")  # no probe: nothing to report about the API
        self.assertFalse([f for f in findings if f["id"] == "api.unreachable" and f["severity"] != "ok"])

    def test_api_with_an_untrusted_certificate(self):
        self.milter_settings({"api.ca_file": None})  # the system's trust store: the harness's CA is not in it
        hits = self.broken("api.unreachable", "error")
        self.assertRegex(hits[0]["title"], r"(?i)certificate|SSL")
        self.milter_settings({"api.ca_file": self.h.api.ca_file})
        self.fixed("api.unreachable")


if __name__ == "__main__":
    unittest.main()
