"""The three man pages as man-db renders them: cllavio.toml(5) (generated from the schema at
build time), cllavio-milter(8) and cllavioctl(8). `man --warnings -l` must say nothing on
stderr, the generated page must be what the current cllavioctl prints and name every key the
Markdown reference lists, and the hand-written pages must cover every option and command the
binaries' --help prints. Needs no Postfix: it runs in a few seconds."""

import os
import re
import subprocess
import unittest

MAN_DIR = os.environ.get("CLLAVIO_MAN_DIR", "")
CTL = os.environ.get("CLLAVIO_CTL", "")
MILTER = os.environ.get("CLLAVIO_MILTER", "")
PAGES = ("cllavio.toml.5", "cllavio-milter.8", "cllavioctl.8")


def render(page):
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
    env.pop("MAN_KEEP_FORMATTING", None)
    r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", os.path.join(MAN_DIR, page)],
                       env=env, capture_output=True, text=True, timeout=30)
    return r


def tag_lines(text):
    """Lines as a .TP tag renders them: indented 7 columns (the section's indent)."""
    return [l[7:] for l in text.splitlines() if l.startswith(" " * 7) and not l.startswith(" " * 8)]


def help_entries(text, start):
    """The entries of a --help text after the line `start`: each line indented by exactly two
    spaces, cut at the first run of two spaces (the description column)."""
    lines = text.splitlines()
    out = []
    for l in lines[lines.index(start) + 1:] if start else lines:
        if l.startswith("  ") and not l.startswith("   "):
            out.append(re.split(r"\s{2,}", l.strip())[0])
    return out


@unittest.skipUnless(MAN_DIR and CTL and MILTER, "CLLAVIO_MAN_DIR, CLLAVIO_CTL and CLLAVIO_MILTER come from ctest")
class ManPages(unittest.TestCase):
    rendered = {}

    @classmethod
    def setUpClass(cls):
        for page in PAGES:
            cls.rendered[page] = render(page)

    def test_render_without_warnings(self):
        for page in PAGES:
            with self.subTest(page=page):
                r = self.rendered[page]
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr, "", f"man --warnings on {page}")
                out = r.stdout
                title = page.rsplit(".", 1)
                self.assertIn(f"{title[0].upper()}({title[1]})", out.splitlines()[0])
                for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "SEE ALSO"):
                    self.assertRegex(out, rf"(?m)^{section}$")
                self.assertGreater(len(out.splitlines()), 120, f"{page} is too short to be a manual")
                # Every hyphen of an option or name renders as an ASCII minus (copyable).
                self.assertNotIn("\u2010", out)
                self.assertNotIn("\u2212", out)

    def test_generated_page_is_current(self):
        now = subprocess.run([CTL, "config-reference", "--man"], capture_output=True, text=True, timeout=30,
                             check=True).stdout
        with open(os.path.join(MAN_DIR, "cllavio.toml.5")) as f:
            self.assertEqual(f.read(), now, "build/man/cllavio.toml.5 is stale: rebuild target man_pages")

    def test_toml_page_names_every_key_of_the_reference(self):
        md = subprocess.run([CTL, "config-reference"], capture_output=True, text=True, timeout=30,
                            check=True).stdout
        keys = re.findall(r"(?m)^\| `([^`]+)` \|", md)
        self.assertGreater(len(keys), 60)
        self.assertIn("milter.socket", keys)
        self.assertIn("tracking_key[].secret", keys)
        tags = tag_lines(self.rendered["cllavio.toml.5"].stdout)
        for key in keys:
            with self.subTest(key=key):
                self.assertTrue(any(re.match(re.escape(key) + r" \(", t) for t in tags),
                                f"{key} has no entry in cllavio.toml(5)")

    def test_milter_page_lists_every_option(self):
        r = subprocess.run([MILTER, "-h"], capture_output=True, text=True, timeout=30, check=True)
        options = [e.split()[0] for e in help_entries(r.stdout, None) if e.startswith("-")]
        self.assertEqual(sorted(options), ["-V", "-c", "-n"])
        tags = tag_lines(self.rendered["cllavio-milter.8"].stdout)
        for opt in options + ["-h"]:
            with self.subTest(option=opt):
                self.assertTrue(any(re.match(re.escape(opt) + r"(\s|$)", t) for t in tags), opt)
        out = self.rendered["cllavio-milter.8"].stdout
        for word in ("SIGHUP", "SIGTERM", "Type=notify", "READY=1", "/var/spool/postfix/cllavio/milter.sock",
                     "/etc/cllavio/orgs.d/", "/var/lib/cllavio"):
            self.assertIn(word, out)

    def test_ctl_page_lists_every_command(self):
        r = subprocess.run([CTL, "--help"], capture_output=True, text=True, timeout=30, check=True)
        commands = []
        for entry in help_entries(r.stdout, "commands:"):
            words = entry.split()
            name = words[:2] if len(words) > 1 and re.fullmatch(r"[a-z-]+", words[1]) else words[:1]
            commands.append(" ".join(name))
        self.assertIn("config-reference", commands)
        self.assertIn("outbox retry-dead", commands)
        tags = tag_lines(self.rendered["cllavioctl.8"].stdout)
        for cmd in commands:
            with self.subTest(command=cmd):
                self.assertTrue(any(re.match(re.escape(cmd) + r"(\s|$)", t) for t in tags),
                                f"`cllavioctl {cmd}` has no entry in cllavioctl(8)")
        out = self.rendered["cllavioctl.8"].stdout
        self.assertRegex(out, r"doctor \[-C POSTFIX_CONFIG_DIR\]")
        self.assertIn("config-reference [--man]", out)


if __name__ == "__main__":
    unittest.main()
