// The one configuration schema mechanism: every key typed, with default, range and doc.
//
// A Schema<T> lists the keys of one kind of file (main file, organization file)
// and how each sets a field of T. apply() walks a parsed TOML table: known keys
// are type- and range-checked, unknown keys and wrong types become Diagnostics
// with file:line, and every key not given keeps the default set by
// apply_defaults(). The same Key data renders the configuration reference
// (docs/configuration.md), so documentation and parser cannot drift apart.
//
// Rules across keys (a tracking switch that needs a domain, stream rules, a URL that
// needs a secret) are declared on the schema too: each with the sentence the reference
// prints and the check the loader runs once every key of the file was read.
#pragma once

#include <toml++/toml.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "conf/diagnostic.hpp"
#include "policy/retention.hpp"

namespace cllavio::conf {

using LineMap = std::map<std::string, unsigned>;  // key path (or "path[i]") -> line

struct KeyContext {
  std::string base_dir;     // relative paths are resolved against this folder
  LineMap* lines = nullptr; // where each key and list element was written
};

class Reporter {
 public:
  Reporter(std::string file, Diagnostics& out, std::string prefix = "")
      : file_(std::move(file)), out_(out), prefix_(std::move(prefix)) {}
  void error(const toml::node& at, std::string message) { error_at(at.source().begin.line, std::move(message)); }
  void error_at(unsigned line, std::string message) { out_.push_back({file_, line, prefix_ + message}); }
  // A reporter whose messages start with "key: ".
  Reporter for_key(const std::string& key) const { return Reporter(file_, out_, prefix_ + key + ": "); }

 private:
  std::string file_;
  Diagnostics& out_;
  std::string prefix_;
};

// What a rule across keys sees besides the file: where each key was written, and what
// the other files of the configuration provide.
struct RuleContext {
  const LineMap& lines;
  bool has_tracking_key = false;        // the secrets file holds a [[tracking_key]]
  bool has_api_signing_secret = false;  // the secrets file holds [api] signing_secret
  bool has_api = false;                 // api.url is set: events reach the Cllavio API
  const std::map<std::string, std::string>* api_org_keys = nullptr;  // the secrets file's [api.org_keys]
  unsigned line(const std::string& key) const {
    auto it = lines.find(key);
    return it == lines.end() ? 0 : it->second;
  }
};

template <class T>
struct Rule {
  std::string doc;  // one sentence for the reference
  std::function<void(const T&, const RuleContext&, Reporter&)> check;
};

template <class T>
struct Key {
  std::string path;          // dotted: "milter.socket"
  std::string type;          // for the reference: "string", "integer", ...
  std::string default_text;  // TOML literal of the default; "" when the key is required
  std::string allowed;       // for the reference: "1..65535", "\"accept\" | \"tempfail\""
  std::string doc;
  bool required = false;
  std::function<void(T&)> reset;
  std::function<void(const toml::node&, T&, const KeyContext&, Reporter&)> set;
  // For arrays of tables: the element's keys for the reference ({path, type, default, allowed, doc}).
  std::vector<std::vector<std::string>> rows = {};
};

std::string toml_type_name(const toml::node& n);
std::string toml_quote(std::string_view s);
std::string resolve_path(const std::string& base_dir, const std::string& path);
std::string closest_name(std::string_view wanted, const std::vector<std::string>& candidates);

template <class T>
class Schema {
 public:
  Schema(std::vector<std::string> tables, std::vector<Key<T>> keys, std::vector<Rule<T>> rules = {})
      : tables_(std::move(tables)), keys_(std::move(keys)), rules_(std::move(rules)) {}

  const std::vector<Key<T>>& keys() const { return keys_; }
  const std::vector<Rule<T>>& rules() const { return rules_; }

  // The rules across keys, once every key was applied.
  void check_rules(const T& target, const RuleContext& ctx, Reporter& rep) const {
    for (const auto& r : rules_) r.check(target, ctx, rep);
  }

  void apply_defaults(T& target) const {
    for (const auto& k : keys_)
      if (k.reset) k.reset(target);
  }

  // `line`: where a missing required key is reported (the table's line; 0 for a file).
  void apply(const toml::table& root, T& target, const KeyContext& ctx, Reporter& rep, unsigned line = 0) const {
    std::vector<std::string> seen;
    walk(root, "", target, ctx, rep, seen);
    for (const auto& k : keys_)
      if (k.required && std::find(seen.begin(), seen.end(), k.path) == seen.end())
        rep.error_at(line, "missing required key '" + k.path + "'");
  }

 private:
  const Key<T>* find(const std::string& path) const {
    for (const auto& k : keys_)
      if (k.path == path) return &k;
    return nullptr;
  }
  bool is_table(const std::string& path) const {
    return std::find(tables_.begin(), tables_.end(), path) != tables_.end();
  }
  std::vector<std::string> names_under(const std::string& prefix) const {
    std::vector<std::string> out;
    for (const auto& k : keys_)
      if (prefix.empty() ? k.path.find('.') == std::string::npos
                         : k.path.rfind(prefix + ".", 0) == 0)
        out.push_back(k.path);
    for (const auto& t : tables_)
      if (prefix.empty() && t.find('.') == std::string::npos) out.push_back(t);
    return out;
  }

  void walk(const toml::table& tbl, const std::string& prefix, T& target, const KeyContext& ctx,
            Reporter& rep, std::vector<std::string>& seen) const {
    for (auto&& [k, node] : tbl) {
      std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
      if (const Key<T>* key = find(path)) {
        if (ctx.lines) (*ctx.lines)[path] = node.source().begin.line;
        seen.push_back(path);
        Reporter key_rep = rep.for_key(path);
        key->set(node, target, ctx, key_rep);
      } else if (is_table(path)) {
        if (const toml::table* sub = node.as_table())
          walk(*sub, path, target, ctx, rep, seen);
        else
          rep.error(node, "'" + path + "' must be a table ([" + path + "]), not " + toml_type_name(node));
      } else {
        std::string msg = "unknown key '" + path + "'";
        std::string near = closest_name(path, names_under(prefix));
        if (!near.empty()) msg += " (did you mean '" + near + "'?)";
        rep.error_at(k.source().begin.line, msg);
      }
    }
  }

  std::vector<std::string> tables_;
  std::vector<Key<T>> keys_;
  std::vector<Rule<T>> rules_;
};

// ---- key builders -------------------------------------------------------------

template <class T, class V>
using Access = std::function<V&(T&)>;

// A string key; check() may normalize the value in place and returns "" or the problem.
template <class T>
Key<T> string_key(std::string path, Access<T, std::string> acc, std::string def, std::string doc,
                  std::function<std::string(std::string&, const KeyContext&)> check = {},
                  std::string allowed = "") {
  Key<T> k{std::move(path), "string", toml_quote(def), std::move(allowed), std::move(doc), false, {}, {}};
  k.reset = [acc, def](T& t) { acc(t) = def; };
  k.set = [acc, check](const toml::node& n, T& t, const KeyContext& ctx, Reporter& rep) {
    const auto* s = n.as_string();
    if (s == nullptr) return rep.error(n, "expected a string, found " + toml_type_name(n));
    std::string v = s->get();
    if (check) {
      if (std::string err = check(v, ctx); !err.empty()) return rep.error(n, err);
    }
    acc(t) = std::move(v);
  };
  return k;
}

// A key whose string form is parsed into V (the default is given in string form).
template <class T, class V>
Key<T> parsed_key(std::string path, std::string type, Access<T, V> acc, std::string def, std::string allowed,
                  std::string doc, std::function<std::variant<V, std::string>(std::string_view, const KeyContext&)> parse) {
  Key<T> k{std::move(path), std::move(type), toml_quote(def), std::move(allowed), std::move(doc), false, {}, {}};
  k.reset = [acc, def, parse](T& t) { acc(t) = std::get<V>(parse(def, KeyContext{})); };
  k.set = [acc, parse](const toml::node& n, T& t, const KeyContext& ctx, Reporter& rep) {
    const auto* s = n.as_string();
    if (s == nullptr) return rep.error(n, "expected a string, found " + toml_type_name(n));
    auto r = parse(s->get(), ctx);
    if (auto* err = std::get_if<std::string>(&r)) return rep.error(n, *err);
    acc(t) = std::move(std::get<V>(r));
  };
  return k;
}

template <class T, class V>
Key<T> int_key(std::string path, Access<T, V> acc, std::int64_t def, std::int64_t min, std::int64_t max,
               std::string doc) {
  Key<T> k{std::move(path), "integer", std::to_string(def),
           std::to_string(min) + ".." + std::to_string(max), std::move(doc), false, {}, {}};
  k.reset = [acc, def](T& t) { acc(t) = static_cast<V>(def); };
  k.set = [acc, min, max](const toml::node& n, T& t, const KeyContext&, Reporter& rep) {
    const auto* i = n.as_integer();
    if (i == nullptr) return rep.error(n, "expected an integer, found " + toml_type_name(n));
    std::int64_t v = i->get();
    if (v < min || v > max)
      return rep.error(n, "value " + std::to_string(v) + " out of range " + std::to_string(min) + ".." +
                              std::to_string(max));
    acc(t) = static_cast<V>(v);
  };
  return k;
}

// Sets a bool (or optional<bool>) field from a TOML boolean.
template <class T, class V>
auto bool_setter(Access<T, V> acc) {
  return [acc](const toml::node& n, T& t, const KeyContext&, Reporter& rep) {
    const auto* b = n.as_boolean();
    if (b == nullptr) return rep.error(n, "expected true or false, found " + toml_type_name(n));
    acc(t) = b->get();
  };
}

template <class T>
Key<T> bool_key(std::string path, Access<T, bool> acc, bool def, std::string doc) {
  Key<T> k{std::move(path), "boolean", def ? "true" : "false", "true | false", std::move(doc), false, {}, {}};
  k.reset = [acc, def](T& t) { acc(t) = def; };
  k.set = bool_setter<T, bool>(acc);
  return k;
}

template <class T, class E>
Key<T> enum_key(std::string path, Access<T, E> acc, E def, std::vector<std::pair<std::string, E>> names,
                std::string doc) {
  std::string allowed, def_name;
  for (const auto& [name, value] : names) {
    allowed += (allowed.empty() ? "" : " | ") + toml_quote(name);
    if (value == def) def_name = name;
  }
  return parsed_key<T, E>(std::move(path), "string", acc, def_name, allowed, std::move(doc),
                          [names, allowed](std::string_view s, const KeyContext&) -> std::variant<E, std::string> {
                            for (const auto& [name, value] : names)
                              if (name == s) return value;
                            return "invalid value " + toml_quote(s) + "; expected " + allowed;
                          });
}

// An array of strings; each element is checked (and may be normalized) on its own,
// with its own line in errors; duplicates within the list are errors.
template <class T>
Key<T> string_list_key(std::string path, Access<T, std::vector<std::string>> acc, std::string doc,
                       std::function<std::string(std::string&)> check, std::string allowed = "") {
  std::string key_path = path;
  Key<T> k{std::move(path), "array of strings", "[]", std::move(allowed), std::move(doc), false, {}, {}};
  k.reset = [acc](T& t) { acc(t).clear(); };
  k.set = [acc, check, key_path](const toml::node& n, T& t, const KeyContext& ctx, Reporter& rep) {
    const auto* arr = n.as_array();
    if (arr == nullptr) return rep.error(n, "expected an array of strings, found " + toml_type_name(n));
    std::vector<std::string> out;
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const toml::node& el = *arr->get(i);
      const auto* s = el.as_string();
      if (s == nullptr) {
        rep.error(el, "element " + std::to_string(i + 1) + ": expected a string, found " + toml_type_name(el));
        continue;
      }
      std::string v = s->get();
      if (std::string err = check ? check(v) : std::string(); !err.empty()) {
        rep.error(el, err);
        continue;
      }
      if (std::find(out.begin(), out.end(), v) != out.end()) {
        rep.error(el, toml_quote(v) + " is listed twice");
        continue;
      }
      if (ctx.lines) (*ctx.lines)[key_path + "[" + std::to_string(out.size()) + "]"] = el.source().begin.line;
      out.push_back(std::move(v));
    }
    acc(t) = std::move(out);
  };
  return k;
}

// The key of a part (Inner) of a larger file (Outer), as a key of the larger file.
template <class Outer, class Inner>
Key<Outer> lift(const Key<Inner>& k, Inner Outer::*part) {
  Key<Outer> out{k.path, k.type, k.default_text, k.allowed, k.doc, k.required, {}, {}, k.rows};
  if (k.reset) out.reset = [r = k.reset, part](Outer& o) { r(o.*part); };
  out.set = [s = k.set, part](const toml::node& n, Outer& o, const KeyContext& ctx, Reporter& rep) {
    s(n, o.*part, ctx, rep);
  };
  return out;
}

// A boolean that may stay unset (its default comes from elsewhere, named in default_text).
template <class T>
Key<T> optional_bool_key(std::string path, Access<T, std::optional<bool>> acc, std::string default_text,
                         std::string doc) {
  Key<T> k{std::move(path), "boolean", std::move(default_text), "true | false", std::move(doc), false, {}, {}};
  k.reset = [acc](T& t) { acc(t) = std::nullopt; };
  k.set = bool_setter<T, std::optional<bool>>(acc);
  return k;
}

// An enum that may stay unset (its default comes from elsewhere, named in default_text).
template <class T, class E>
Key<T> optional_enum_key(std::string path, Access<T, std::optional<E>> acc, std::string default_text,
                         std::vector<std::pair<std::string, E>> names, std::string doc) {
  std::string allowed;
  for (const auto& [name, value] : names) allowed += (allowed.empty() ? "" : " | ") + toml_quote(name);
  Key<T> k{std::move(path), "string", std::move(default_text), allowed, std::move(doc), false, {}, {}};
  k.reset = [acc](T& t) { acc(t) = std::nullopt; };
  k.set = [acc, names, allowed](const toml::node& n, T& t, const KeyContext&, Reporter& rep) {
    const auto* s = n.as_string();
    if (s == nullptr) return rep.error(n, "expected a string, found " + toml_type_name(n));
    for (const auto& [name, value] : names)
      if (name == s->get()) return void(acc(t) = value);
    rep.error(n, "invalid value " + toml_quote(s->get()) + "; expected " + allowed);
  };
  return k;
}

// A retention duration ("90d", "12h", "30s": 1s..36500d), stored in seconds.
template <class T>
Key<T> duration_key(std::string path, Access<T, std::int64_t> acc, std::string def, std::string doc) {
  return parsed_key<T, std::int64_t>(
      std::move(path), "string", acc, std::move(def), "`30s`, `15m`, `12h`, `90d`: 1s..36500d", std::move(doc),
      [](std::string_view s, const KeyContext&) -> std::variant<std::int64_t, std::string> {
        if (auto v = policy::parse_retention(s)) return *v;
        return "invalid duration " + toml_quote(s) + "; expected a number and s, m, h or d (1s..36500d)";
      });
}

// The same, optional: unset means the default named in default_text (the main file's value).
template <class T>
Key<T> optional_duration_key(std::string path, Access<T, std::optional<std::int64_t>> acc, std::string default_text,
                             std::string doc) {
  Key<T> k{std::move(path), "string", std::move(default_text), "`30s`, `15m`, `12h`, `90d`: 1s..36500d",
           std::move(doc), false, {}, {}};
  k.reset = [acc](T& t) { acc(t) = std::nullopt; };
  k.set = [acc](const toml::node& n, T& t, const KeyContext&, Reporter& rep) {
    const auto* s = n.as_string();
    if (s == nullptr) return rep.error(n, "expected a string, found " + toml_type_name(n));
    auto v = policy::parse_retention(s->get());
    if (!v) return rep.error(n, "invalid duration " + toml_quote(s->get()) +
                                    "; expected a number and s, m, h or d (1s..36500d)");
    acc(t) = *v;
  };
  return k;
}

// An array of tables (`[[path]]` or `path = [{...}, ...]`), each element checked against
// `sub` with its own defaults, unknown-key and required-key errors. Element i's keys are
// recorded in ctx.lines as "path[i].key", the element itself as "path[i]".
template <class T, class E>
Key<T> table_array_key(std::string path, Access<T, std::vector<E>> acc, const Schema<E>& sub, std::string allowed,
                       std::string doc) {
  std::string key_path = path;
  Key<T> k{std::move(path), "array of tables", "[]", std::move(allowed), std::move(doc), false, {}, {}};
  for (const auto& s : sub.keys())
    k.rows.push_back({key_path + "[]." + s.path, s.type, s.required ? "(required)" : s.default_text, s.allowed, s.doc});
  k.reset = [acc](T& t) { acc(t).clear(); };
  k.set = [acc, &sub, key_path](const toml::node& n, T& t, const KeyContext& ctx, Reporter& rep) {
    const auto* arr = n.as_array();
    if (arr == nullptr) return rep.error(n, "expected an array of tables, found " + toml_type_name(n));
    std::vector<E> out;
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const toml::node& el = *arr->get(i);
      const auto* tbl = el.as_table();
      if (tbl == nullptr) {
        rep.error(el, "element " + std::to_string(i + 1) + ": expected a table, found " + toml_type_name(el));
        continue;
      }
      E e;
      sub.apply_defaults(e);
      LineMap lines;
      KeyContext sub_ctx{ctx.base_dir, &lines};
      Reporter el_rep = rep.for_key("element " + std::to_string(i + 1));
      sub.apply(*tbl, e, sub_ctx, el_rep, el.source().begin.line);
      if (ctx.lines) {
        std::string at = key_path + "[" + std::to_string(i) + "]";
        (*ctx.lines)[at] = el.source().begin.line;
        for (const auto& [kp, line] : lines) (*ctx.lines)[at + "." + kp] = line;
      }
      out.push_back(std::move(e));
    }
    acc(t) = std::move(out);
  };
  return k;
}

}  // namespace cllavio::conf
