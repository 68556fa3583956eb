"""toml_writer (the harness's TOML rendering): what it writes parses back, with tomllib,
to the values it was given. No Postfix, no root needed."""

import math
import tomllib
import unittest

import toml_writer as tw


class Rendering(unittest.TestCase):
    def roundtrip(self, doc):
        text = tw.dumps(doc)
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            self.fail(f"{e}:\n{text}")

    def test_scalars_and_arrays(self):
        doc = {"s": "plain", "i": -42, "big": 2**62, "t": True, "f": False, "x": 1.5, "e": 1e20,
               "list": ["a", "b"], "ints": [1, 2, 3], "empty": [], "nested": [[1, 2], ["x"]],
               "tuple": ("u", "v")}
        want = dict(doc, tuple=["u", "v"])
        self.assertEqual(self.roundtrip(doc), want)

    def test_strings_are_escaped(self):
        tricky = ['say "hi"', "back\\slash", "tab\there", "new\nline\r\n", "\x00\x01\x1f\x7f",
                  "caf\u00e9 \u20ac \U0001F600", "'single'", "#not a comment", "\b\f", "trailing\\"]
        doc = {f"k{i}": s for i, s in enumerate(tricky)}
        self.assertEqual(self.roundtrip(doc), doc)
        self.assertEqual(tw.string('a"b\\c\n'), r'"a\"b\\c\n"')
        with self.assertRaises(ValueError):
            tw.string("\ud800")

    def test_keys_are_quoted_when_not_bare(self):
        doc = {"bare_key-1": 1, "with.dot": 2, "with space": 3, "": 4, "\u00e9": 5, "q\"uote": {"x": 1}}
        self.assertEqual(self.roundtrip(doc), doc)
        self.assertIn("bare_key-1 = 1\n", tw.dumps(doc))
        self.assertIn('"with.dot" = 2\n', tw.dumps(doc))

    def test_tables_and_arrays_of_tables(self):
        doc = {
            "top": "first",
            "milter": {"socket": "unix:/x.sock", "user": None, "on_error": "accept"},
            "api": {"org_keys": {"acme": "k1", "small": "k2"}},   # only a sub-table: no [api] line
            "empty": {},
            "tracking_key": [{"id": "a", "secret": "s1"}, {"id": "b", "secret": "s2", "extra": {"n": 1}}],
            "quota": {"messages": [{"per": "1m", "max": 10}], "max_recipients_per_message": 5},
            "mixed": [{"a": 1}, 2],          # not all tables: inline tables in an array
        }
        got = self.roundtrip(doc)
        want = dict(doc, milter={"socket": "unix:/x.sock", "on_error": "accept"})
        self.assertEqual(got, want)
        text = tw.dumps(doc)
        self.assertTrue(text.startswith('top = "first"\nmixed = [{ a = 1 }, 2]\n\n[milter]\n'), text)
        self.assertNotIn("[api]\n", text)
        self.assertIn("[api.org_keys]\n", text)
        self.assertIn("[empty]\n", text)
        self.assertEqual(text.count("[[tracking_key]]"), 2)
        self.assertIn("[tracking_key.extra]\nn = 1\n", text)
        self.assertIn("[quota]\nmax_recipients_per_message = 5\n\n[[quota.messages]]\n", text)

    def test_special_floats_and_comment(self):
        text = tw.dumps({"a": math.inf, "b": -math.inf, "c": math.nan}, comment="generated\nby a test")
        self.assertTrue(text.startswith("# generated\n# by a test\n"))
        got = tomllib.loads(text)
        self.assertEqual((got["a"], got["b"]), (math.inf, -math.inf))
        self.assertTrue(math.isnan(got["c"]))

    def test_unsupported_values_are_refused(self):
        for bad in (object(), b"bytes", {1: "int key"}, [1, None]):
            with self.assertRaises((TypeError, ValueError)):
                tw.dumps({"k": bad})
        with self.assertRaises(TypeError):
            tw.dumps(["not", "a", "table"])


class Building(unittest.TestCase):
    def test_set_dotted(self):
        doc = {"milter": {"user": "nobody"}}
        tw.set_dotted(doc, "milter.on_error", "tempfail")
        tw.set_dotted(doc, "api.org_keys.acme", "k")
        tw.set_dotted(doc, "milter.user", None)
        tw.set_dotted(doc, "absent.key", None)
        self.assertEqual(doc, {"milter": {"on_error": "tempfail"}, "api": {"org_keys": {"acme": "k"}}})

    def test_merge(self):
        base = {"api": {"url": "u", "org_keys": {"a": "1"}}, "x": [1]}
        tw.merge(base, {"api": {"org_keys": {"b": "2"}, "url": "v"}, "x": [2], "y": {"z": 1}})
        self.assertEqual(base, {"api": {"url": "v", "org_keys": {"a": "1", "b": "2"}}, "x": [2], "y": {"z": 1}})

    def test_as_dict(self):
        text = '[api]\nsigning_secret = "s"\n[api.org_keys]\nacme = "k"\n'
        self.assertEqual(tw.as_dict(text), {"api": {"signing_secret": "s", "org_keys": {"acme": "k"}}})
        doc = {"a": {"b": [1]}}
        copy = tw.as_dict(doc)
        copy["a"]["b"].append(2)
        self.assertEqual(doc, {"a": {"b": [1]}})
        self.assertEqual(tw.as_dict(tw.dumps(doc)), doc)


if __name__ == "__main__":
    unittest.main()
