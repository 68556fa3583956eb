#define BOOST_TEST_MODULE loader
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "conf/loader.hpp"
#include "conf/schemas.hpp"
#include "tmpdir.hpp"

using namespace cllavio::conf;
using cllavio::test::TmpDir;

namespace {

// Main file with orgs.d next to it; returns the main file path.
std::string setup(const TmpDir& dir, const std::string& main, std::map<std::string, std::string> orgs = {}) {
  std::filesystem::create_directories(dir / "orgs.d");
  for (const auto& [name, text] : orgs) dir.write("orgs.d/" + name, text);
  return dir.write("cllavio.toml", "[orgs]\ndir = \"orgs.d\"\n" + main);
}

std::string all(const LoadResult& r) {
  std::string s;
  for (const auto& d : r.errors) s += d.str() + "\n";
  return s;
}

bool has(const LoadResult& r, const std::string& needle) { return all(r).find(needle) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(defaults_when_keys_are_absent) {
  TmpDir dir;
  auto r = load_config(setup(dir, ""));
  BOOST_TEST_REQUIRE(r.config != nullptr, all(r));
  const Config& c = *r.config;
  BOOST_TEST(c.milter.socket.libmilter() == "unix:/run/cllavio/milter.sock");
  BOOST_TEST(c.milter.socket_mode == 0660u);
  BOOST_TEST(!c.milter.user);
  BOOST_TEST((c.milter.on_error == OnError::accept));
  BOOST_TEST(c.store.path == "/var/lib/cllavio");
  BOOST_TEST(c.store.map_size_mb == 1024u);
  BOOST_TEST((c.orgs_settings.unknown == cllavio::policy::UnknownOrg::accept));
  BOOST_TEST((c.log.target == LogTarget::syslog));
  BOOST_TEST((c.log.level == LogLevel::info));
  BOOST_TEST(c.orgs.orgs().empty());
}

BOOST_AUTO_TEST_CASE(values_and_relative_paths) {
  TmpDir dir;
  auto path = setup(dir,
                    "unknown = \"reject\"\n[milter]\nsocket = \"unix:run/m.sock\"\nsocket_mode = \"0600\"\n"
                    "on_error = \"tempfail\"\ngroup = \"root\"\n[store]\npath = \"data\"\nmap_size_mb = 8\n"
                    "sync = \"none\"\n[log]\ntarget = \"stderr\"\nlevel = \"debug\"\n[api]\nmax_outbox_mb = 4\n",
                    {{"acme.toml",
                      "id = \"acme\"\nname = \"Acme\"\ndomains = [\"ACME.example.\"]\nsasl_users = [\"Alice@acme.example\", "
                      "\"@staff.acme.example\"]\nnetworks = [\"192.0.2.0/24\", \"2001:db8::/32\"]\n"}});
  auto r = load_config(path);
  BOOST_TEST_REQUIRE(r.config != nullptr, all(r));
  const Config& c = *r.config;
  BOOST_TEST(c.milter.socket.path == dir / "run/m.sock");
  BOOST_TEST(c.milter.socket_mode == 0600u);
  BOOST_TEST((c.milter.on_error == OnError::tempfail));
  BOOST_TEST(*c.milter.group == "root");
  BOOST_TEST(c.store.path == dir / "data");
  BOOST_TEST((c.store.sync == StoreSync::none));
  BOOST_TEST((c.orgs_settings.unknown == cllavio::policy::UnknownOrg::reject));
  BOOST_TEST((c.log.level == LogLevel::debug));
  BOOST_REQUIRE_EQUAL(c.orgs.orgs().size(), 1u);
  const auto& o = c.orgs.orgs()[0];
  BOOST_TEST(o.domains == std::vector<std::string>{"acme.example"});
  BOOST_TEST(o.sasl_users == (std::vector<std::string>{"alice@acme.example", "@staff.acme.example"}));
  BOOST_TEST(o.networks.size() == 2u);
}

BOOST_AUTO_TEST_CASE(retention_defaults_overrides_and_mistakes) {
  TmpDir dir;
  auto path = setup(dir, "[retention]\nmessages = \"30d\"\nrejects = \"12h\"\nprune_interval_s = 5\n",
                    {{"acme.toml", "id = \"acme\"\ndomains = [\"acme.example\"]\n[retention]\nmessages = \"10s\"\n"},
                     {"beta.toml", "id = \"beta\"\ndomains = [\"beta.example\"]\n"}});
  auto r = load_config(path);
  BOOST_TEST_REQUIRE(r.config != nullptr, all(r));
  const Config& c = *r.config;
  BOOST_TEST(c.retention.prune_interval_s == 5);
  BOOST_TEST(c.retention.defaults.messages_s == 30 * 86400);
  BOOST_TEST(c.retention.defaults.rejects_s == 12 * 3600);
  BOOST_TEST(c.retention.defaults.audit_s == 400 * 86400);
  BOOST_TEST(c.retention.defaults.dead_letters_s == 30 * 86400);
  BOOST_TEST(c.retention_for("acme").messages_s == 10);
  BOOST_TEST(c.retention_for("acme").rejects_s == 12 * 3600);  // the main file's, not overridden
  BOOST_TEST(c.retention_for("beta").messages_s == 30 * 86400);
  BOOST_TEST(c.retention_for("nobody").audit_s == 400 * 86400);

  TmpDir bad;
  auto bad_path = setup(bad, "[retention]\nmessages = \"0s\"\naudit = \"forever\"\nprune_interval_s = 0\n"
                             "[store]\nmap_size_mb = 100\n[api]\nmax_outbox_mb = 60\n",
                        {{"acme.toml", "id = \"acme\"\ndomains = [\"acme.example\"]\n[retention]\nrejects = 7\n"
                                       "keep = \"1d\"\n"}});
  auto b = load_config(bad_path);
  BOOST_TEST(b.config == nullptr);
  BOOST_TEST(has(b, bad_path + ":4: retention.messages: invalid duration \"0s\""), all(b));
  BOOST_TEST(has(b, bad_path + ":5: retention.audit: invalid duration \"forever\""), all(b));
  BOOST_TEST(has(b, bad_path + ":6: retention.prune_interval_s: value 0 out of range 1..86400"), all(b));
  BOOST_TEST(has(b, bad_path + ":10: api.max_outbox_mb = 60 leaves too little of store.map_size_mb = 100"), all(b));
  BOOST_TEST(has(b, "acme.toml:4: retention.rejects: expected a string, found an integer"), all(b));
  BOOST_TEST(has(b, "acme.toml:5: unknown key 'retention.keep'"), all(b));
}

BOOST_AUTO_TEST_CASE(metrics_listen_is_parsed_or_refused_with_its_line) {
  TmpDir dir;
  auto r = load_config(setup(dir, "[metrics]\nlisten = \"127.0.0.1:9899\"\n"));
  BOOST_TEST_REQUIRE(r.config != nullptr, all(r));
  BOOST_TEST(r.config->metrics.host == "127.0.0.1");
  BOOST_TEST(r.config->metrics.port == 9899);
  TmpDir v6;
  auto r6 = load_config(setup(v6, "[metrics]\nlisten = \"[::1]:9100\"\n"));
  BOOST_TEST_REQUIRE(r6.config != nullptr, all(r6));
  BOOST_TEST(r6.config->metrics.host == "::1");
  BOOST_TEST(r6.config->metrics.port == 9100);
  TmpDir off;
  auto ro = load_config(setup(off, ""));
  BOOST_TEST_REQUIRE(ro.config != nullptr, all(ro));
  BOOST_TEST(ro.config->metrics.listen.empty());
  BOOST_TEST(ro.config->metrics.port == 0);
  for (const char* bad : {"9899", "127.0.0.1:99999", "::1:9899", "[::1]9899", "host:", ":9899"}) {
    TmpDir b;
    auto path = setup(b, std::string("[metrics]\nlisten = \"") + bad + "\"\n");
    auto rb = load_config(path);
    BOOST_TEST(rb.config == nullptr, bad);
    BOOST_TEST(has(rb, path + ":4: metrics.listen: "), all(rb));
  }
}

BOOST_AUTO_TEST_CASE(shared_quota_backend_and_redis_settings) {
  TmpDir dir;
  auto def = load_config(setup(dir, ""));
  BOOST_TEST_REQUIRE(def.config != nullptr, all(def));
  BOOST_TEST((def.config->quota.backend == QuotaBackendKind::local));
  BOOST_TEST((def.config->quota.on_backend_error == OnBackendError::local));
  BOOST_TEST(def.config->redis.endpoint.host == "127.0.0.1");
  BOOST_TEST(def.config->redis.endpoint.port == 6379);
  BOOST_TEST(def.config->redis.timeout_ms == 50);
  TmpDir d2;
  // timeout_ms before url: the url key sets only url and endpoint.
  auto r = load_config(setup(d2, "[quota]\nbackend = \"redis\"\non_backend_error = \"tempfail\"\nhosts = 3\n"
                                 "[redis]\ntimeout_ms = 20\nurl = \"redis://[::1]:6380/2\"\npool_size = 4\n"
                                 "key_prefix = \"q:\"\nlease_s = 120\n"));
  BOOST_TEST_REQUIRE(r.config != nullptr, all(r));
  const Config& c = *r.config;
  BOOST_TEST((c.quota.backend == QuotaBackendKind::redis));
  BOOST_TEST((c.quota.on_backend_error == OnBackendError::tempfail));
  BOOST_TEST(c.quota.hosts == 3);
  BOOST_TEST(c.redis.endpoint.host == "::1");
  BOOST_TEST(c.redis.endpoint.port == 6380);
  BOOST_TEST(c.redis.endpoint.db == 2);
  BOOST_TEST(c.redis.timeout_ms == 20);
  BOOST_TEST(c.redis.pool_size == 4);
  BOOST_TEST(c.redis.key_prefix == "q:");
  BOOST_TEST(c.redis.lease_s == 120);
  TmpDir d3;
  auto u = load_config(setup(d3, "[redis]\nurl = \"unix:/run/redis/redis.sock?db=1\"\n"));
  BOOST_TEST_REQUIRE(u.config != nullptr, all(u));
  BOOST_TEST(u.config->redis.endpoint.unix_path == "/run/redis/redis.sock");
  BOOST_TEST(u.config->redis.endpoint.db == 1);
  for (const char* bad : {"http://x", "redis://", "redis://h:0", "redis://h:70000", "redis://h/x", "redis://u:pw@h",
                          "unix:relative.sock", "redis://[::1", "redis://[[[[[[]:603/2", "redis://[%%]:1", "redis://a b"}) {
    TmpDir b;
    auto path = setup(b, std::string("[redis]\nurl = \"") + bad + "\"\n");
    auto rb = load_config(path);
    BOOST_TEST(rb.config == nullptr, bad);
    BOOST_TEST(has(rb, path + ":4: redis.url: "), bad << ": " << all(rb));
  }
  TmpDir d4;
  auto path = setup(d4, "[quota]\nbackend = \"memcached\"\nhosts = 0\n[redis]\nsentinel = true\n"
                        "key_prefix = \"a{b}\"\n");
  auto e = load_config(path);
  BOOST_TEST(has(e, path + ":4: quota.backend: invalid value \"memcached\""), all(e));
  BOOST_TEST(has(e, path + ":5: quota.hosts: value 0 out of range 1..1000"), all(e));
  BOOST_TEST(has(e, path + ":7: unknown key 'redis.sentinel'"), all(e));
  BOOST_TEST(has(e, path + ":8: redis.key_prefix: "), all(e));
}

BOOST_AUTO_TEST_CASE(toml_octal_integer_mode_is_accepted) {
  TmpDir dir;
  auto r = load_config(setup(dir, "[milter]\nsocket_mode = 0o640\n"));
  BOOST_TEST_REQUIRE(r.config != nullptr, all(r));
  BOOST_TEST(r.config->milter.socket_mode == 0640u);
}

BOOST_AUTO_TEST_CASE(every_problem_is_reported_with_file_and_line) {
  TmpDir dir;
  auto path = setup(dir,
                    "[milter]\n"                      // 3
                    "socket = \"tcp:1\"\n"            // 4
                    "sockt_mode = \"0660\"\n"         // 5
                    "on_error = \"maybe\"\n"          // 6
                    "timeout_s = \"10\"\n"            // 7
                    "user = \"no-such-user-xyz\"\n"   // 8
                    "[store]\n"                       // 9
                    "map_size_mb = 0\n"               // 10
                    "[colour]\n"                      // 11
                    "x = 1\n");                       // 12
  auto r = load_config(path);
  BOOST_TEST(r.config == nullptr);
  BOOST_TEST(has(r, path + ":4: milter.socket: expected unix:/path"), all(r));
  BOOST_TEST(has(r, path + ":5: unknown key 'milter.sockt_mode' (did you mean 'milter.socket_mode'?)"), all(r));
  BOOST_TEST(has(r, path + ":6: milter.on_error: invalid value \"maybe\""), all(r));
  BOOST_TEST(has(r, path + ":7: milter.timeout_s: expected an integer, found a string"), all(r));
  BOOST_TEST(has(r, path + ":8: milter.user: unknown user \"no-such-user-xyz\""), all(r));
  BOOST_TEST(has(r, path + ":10: store.map_size_mb: value 0 out of range 1..1048576"), all(r));
  BOOST_TEST(has(r, path + ":11: unknown key 'colour'"), all(r));
  BOOST_TEST(r.errors.size() == 7u, all(r));
  for (std::size_t i = 1; i < r.errors.size(); ++i) BOOST_TEST(r.errors[i - 1].line <= r.errors[i].line);
}

BOOST_AUTO_TEST_CASE(toml_syntax_errors_have_a_line) {
  TmpDir dir;
  auto path = setup(dir, "[milter]\nsocket_mode = 0660\n");  // leading zeros are not TOML
  auto r = load_config(path);
  BOOST_TEST(r.config == nullptr);
  BOOST_REQUIRE_EQUAL(r.errors.size(), 1u);
  BOOST_TEST(r.errors[0].file == path);
  BOOST_TEST(r.errors[0].line == 4u);
}

BOOST_AUTO_TEST_CASE(missing_files_and_folders) {
  TmpDir dir;
  auto r = load_config(dir / "nope.toml");
  BOOST_TEST(r.config == nullptr);
  BOOST_TEST(has(r, dir / "nope.toml: cannot read: No such file or directory"), all(r));
  auto path = dir.write("main.toml", "[orgs]\ndir = \"missing.d\"\n");
  r = load_config(path);
  BOOST_TEST(has(r, path + ":2: orgs.dir '" + (dir / "missing.d") + "' is not a readable folder"), all(r));
}

BOOST_AUTO_TEST_CASE(org_file_problems) {
  TmpDir dir;
  auto path = setup(dir, "",
                    {{"a.toml", "name = \"No id\"\ndomains = [\"ok.example\", 3, \"bad_domain\"]\n"},
                     {"b.toml", "id = \"Bad Id\"\nnetworks = [\"192.0.2.1/24\"]\ntrust_sender_domain = \"yes\"\n"},
                     {"c.toml", "id = \"unknown\"\n"},
                     {"notes.txt", "ignored = true\n"},
                     {".hidden.toml", "ignored = true\n"}});
  auto r = load_config(path);
  BOOST_TEST(r.config == nullptr);
  std::string a = dir / "orgs.d/a.toml", b = dir / "orgs.d/b.toml", c = dir / "orgs.d/c.toml";
  BOOST_TEST(has(r, a + ": missing required key 'id'"), all(r));
  BOOST_TEST(has(r, a + ":2: domains: element 2: expected a string, found an integer"), all(r));
  BOOST_TEST(has(r, a + ":2: domains: invalid domain \"bad_domain\""), all(r));
  BOOST_TEST(has(r, b + ":1: id: invalid org id \"Bad Id\""), all(r));
  BOOST_TEST(has(r, b + ":2: networks: invalid network \"192.0.2.1/24\""), all(r));
  BOOST_TEST(has(r, b + ":3: trust_sender_domain: expected true or false, found a string"), all(r));
  BOOST_TEST(has(r, c + ":1: id: org id \"unknown\" is reserved"), all(r));
  BOOST_TEST(!has(r, "notes.txt"));
  BOOST_TEST(!has(r, "hidden"));
}

BOOST_AUTO_TEST_CASE(cross_org_conflicts) {
  TmpDir dir;
  auto path = setup(dir, "",
                    {{"1-acme.toml", "id = \"acme\"\ndomains = [\"acme.example\"]\nsasl_users = [\"alice@shared.example\", "
                                     "\"@acme.example\"]\nnetworks = [\"192.0.2.0/24\"]\n"},
                     {"2-globex.toml", "id = \"globex\"\ndomains = [\"globex.example\",\n  \"acme.example\"]\n"
                                       "sasl_users = [\"@shared.example\", \"Bob@ACME.example\"]\n"
                                       "networks = [\"192.0.2.0/24\"]\n"},
                     {"3-dup.toml", "id = \"acme\"\n"}});
  auto r = load_config(path);
  BOOST_TEST(r.config == nullptr);
  std::string one = dir / "orgs.d/1-acme.toml", two = dir / "orgs.d/2-globex.toml", three = dir / "orgs.d/3-dup.toml";
  BOOST_TEST(has(r, two + ":3: domain 'acme.example' is already claimed by org 'acme' (" + one + ":2)"), all(r));
  BOOST_TEST(has(r, two + ":4: SASL login domain '@shared.example' overlaps login 'alice@shared.example'"), all(r));
  BOOST_TEST(has(r, two + ":4: SASL login 'bob@acme.example' (covered by '@acme.example')"), all(r));
  BOOST_TEST(has(r, three + ":1: org id 'acme' is already defined in " + one + ":1"), all(r));
  BOOST_TEST(!has(r, "networks"), "a shared smarthost network is allowed");
  BOOST_TEST(r.errors.size() == 4u, all(r));
}

BOOST_AUTO_TEST_CASE(main_only_is_offered_when_just_org_files_are_broken) {
  TmpDir dir;
  auto r = load_config(setup(dir, "[store]\npath = \"s\"\n", {{"a.toml", "id = 1\n"}}));
  BOOST_TEST(r.config == nullptr);
  BOOST_TEST_REQUIRE(r.main_only != nullptr);
  BOOST_TEST(r.main_only->store.path == dir / "s");
  auto bad_main = load_config(setup(dir, "[store]\nsize = 1\n", {{"a.toml", "id = 1\n"}}));
  BOOST_TEST(bad_main.main_only == nullptr);
}

BOOST_AUTO_TEST_CASE(same_org_may_list_login_and_its_domain) {
  TmpDir dir;
  auto r = load_config(setup(dir, "", {{"a.toml", "id = \"a\"\nsasl_users = [\"x@a.example\", \"@a.example\"]\n"}}));
  BOOST_TEST(r.config != nullptr, all(r));
}

BOOST_AUTO_TEST_CASE(shipped_sample_config_is_valid) {
  auto r = load_config(std::string(CLLAVIO_SOURCE_DIR) + "/conf/samples/cllavio.toml");
  BOOST_TEST_REQUIRE(r.config != nullptr, all(r));
  BOOST_TEST(r.config->orgs.orgs().size() == 1u);
}

BOOST_AUTO_TEST_CASE(check_config_exit_codes) {
  TmpDir dir;
  std::FILE* devnull = std::fopen("/dev/null", "w");
  BOOST_TEST(check_config(setup(dir, ""), devnull, devnull) == 0);
  // The same valid file plus one unknown key: only that key can make it fail.
  BOOST_TEST(check_config(setup(dir, "[milter]\nnope = 1\n"), devnull, devnull) == kExitConfig);
  std::fclose(devnull);
}

BOOST_AUTO_TEST_CASE(decimal_socket_modes_are_rejected) {
  TmpDir dir;
  auto r = load_config(setup(dir, "[milter]\nsocket_mode = 438\n"));  // 438 == 0o666: surely a mistake
  BOOST_TEST(has(r, "milter.socket_mode: expected an octal mode string"), all(r));
}

BOOST_AUTO_TEST_CASE(socket_path_length_is_checked_after_resolving) {
  TmpDir dir;
  std::string rel(100, 'a');  // short alone, too long below the temp folder
  auto r = load_config(setup(dir, "[milter]\nsocket = \"unix:" + rel + "\"\n"));
  BOOST_TEST(has(r, "is longer than 107 bytes"), all(r));
}

BOOST_AUTO_TEST_CASE(reference_in_docs_matches_the_schema) {
  std::ifstream in(std::string(CLLAVIO_SOURCE_DIR) + "/docs/configuration.md");
  BOOST_TEST_REQUIRE(static_cast<bool>(in), "docs/configuration.md is missing");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string doc = ss.str();
  const std::string begin = "<!-- BEGIN GENERATED: cllavioctl config-reference -->\n";
  const std::string end = "<!-- END GENERATED -->";
  auto b = doc.find(begin), e = doc.find(end);
  BOOST_TEST_REQUIRE((b != std::string::npos && e != std::string::npos && b < e));
  BOOST_TEST(doc.substr(b + begin.size(), e - b - begin.size()) == render_reference(),
             "regenerate with scripts/gen-docs.sh");
}

BOOST_AUTO_TEST_CASE(rules_across_keys_are_declared_on_the_schema_and_documented) {
  std::string ref = render_reference();
  for (const auto* schema_rules : {&main_schema().rules()}) BOOST_TEST(!schema_rules->empty());
  for (const auto& r : org_schema().rules()) BOOST_TEST(ref.find("- " + r.doc + "\n") != std::string::npos, r.doc);
  for (const auto& r : main_schema().rules()) BOOST_TEST(ref.find("- " + r.doc + "\n") != std::string::npos, r.doc);
  for (const auto& r : secrets_schema().rules()) BOOST_TEST(ref.find("- " + r.doc + "\n") != std::string::npos, r.doc);
  BOOST_TEST(org_schema().rules().size() >= 6u);  // tracking needs a domain, a key; the stream and quota rules
}

BOOST_AUTO_TEST_CASE(api_defaults_are_the_structs_own) {
  TmpDir dir;
  auto r = load_config(setup(dir, ""));
  BOOST_TEST_REQUIRE(r.config != nullptr, all(r));
  const cllavio::conf::ApiSettings def;
  const auto& api = r.config->api;
  BOOST_TEST(api.batch_max == def.batch_max);
  BOOST_TEST(api.batch_max_kb == def.batch_max_kb);
  BOOST_TEST(api.linger_ms == def.linger_ms);
  BOOST_TEST(api.max_outbox_mb == def.max_outbox_mb);
  BOOST_TEST(api.consent_poll_s == def.consent_poll_s);
  BOOST_TEST(api.timeout_ms == def.timeout_ms);
  BOOST_TEST(render_reference().find("| `api.batch_max` | integer | `" + std::to_string(def.batch_max) + "`") !=
             std::string::npos);
}

namespace {

const std::string kTrackingOrg =
    "id = \"acme\"\n"
    "[tracking]\n"
    "opens = true\n"
    "clicks = true\n"
    "domain = \"T.Acme.Example\"\n"
    "pixel_position = \"top\"\n";

std::string secrets(const TmpDir& dir, const std::string& text, unsigned mode = 0600) {
  std::string p = dir.write("secrets.toml", text);
  ::chmod(p.c_str(), mode);
  return p;
}

const std::string kKey = "[[tracking_key]]\nid = \"2026a\"\nsecret = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n";

}  // namespace

BOOST_AUTO_TEST_CASE(tracking_settings_and_keys) {
  TmpDir dir;
  secrets(dir, kKey + "[[tracking_key]]\nid = \"2025\"\nsecret = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n");
  auto r = load_config(setup(dir, "[secrets]\nfile = \"secrets.toml\"\n[tracking]\nmax_links = 5\n",
                             {{"acme.toml", kTrackingOrg}}));
  BOOST_TEST_REQUIRE(r.config != nullptr, all(r));
  const auto& t = r.config->tracking_for("acme");
  BOOST_TEST(t.opens);
  BOOST_TEST(t.clicks);
  BOOST_TEST(t.domain == "t.acme.example");
  BOOST_TEST((t.pixel == cllavio::tracking::PixelPosition::top));
  BOOST_TEST(t.skip_signed);
  BOOST_TEST(!r.config->tracking_for("other").enabled());
  BOOST_TEST(r.config->tracking_limits.max_links == 5u);
  BOOST_TEST(r.config->tokens->can_sign());
  cllavio::tracking::TokenData d;
  d.org = "acme";
  auto v = r.config->tokens->verify(r.config->tokens->sign(d));
  BOOST_TEST(std::get<cllavio::tracking::TokenData>(v).key_id == "2026a");  // the first key signs
}

BOOST_AUTO_TEST_CASE(compact_tokens_need_the_api) {
  TmpDir dir;
  const std::string org = kTrackingOrg + "token_version = 2\n";
  secrets(dir, kKey + "[api]\nsigning_secret = \"0123456789abcdef0123456789abcdef\"\n");
  // Version 1 is the default.
  auto v1 = load_config(setup(dir, "[secrets]\nfile = \"secrets.toml\"\n", {{"acme.toml", kTrackingOrg}}));
  BOOST_TEST_REQUIRE(v1.config != nullptr, all(v1));
  BOOST_TEST(v1.config->tracking_for("acme").token_version == 1);
  // Version 2 without api.url: the endpoint could never resolve the tokens.
  auto no_api = load_config(setup(dir, "[secrets]\nfile = \"secrets.toml\"\n", {{"acme.toml", org}}));
  BOOST_TEST(has(no_api, dir / "orgs.d/acme.toml" + std::string(":7: tracking.token_version = 2 needs api.url")),
             all(no_api));
  // With the API but no key for this org: its events would never leave the outbox.
  auto no_key = load_config(setup(dir, "[secrets]\nfile = \"secrets.toml\"\n[api]\nurl = \"https://api.example\"\n",
                                  {{"acme.toml", org}}));
  BOOST_TEST(has(no_key, ":7: tracking.token_version = 2 needs an API key for org \"acme\""), all(no_key));
  secrets(dir, kKey + "[api]\nsigning_secret = \"0123456789abcdef0123456789abcdef\"\n[api.org_keys]\nacme = \"k\"\n");
  auto ok = load_config(setup(dir, "[secrets]\nfile = \"secrets.toml\"\n[api]\nurl = \"https://api.example\"\n",
                              {{"acme.toml", org}}));
  BOOST_TEST_REQUIRE(ok.config != nullptr, all(ok));
  BOOST_TEST(ok.config->tracking_for("acme").token_version == 2);
  auto three = load_config(setup(dir, "[secrets]\nfile = \"secrets.toml\"\n[api]\nurl = \"https://api.example\"\n",
                                 {{"acme.toml", kTrackingOrg + "token_version = 3\n"}}));
  BOOST_TEST(has(three, ":7: tracking.token_version: value 3 out of range 1..2"), all(three));
}

BOOST_AUTO_TEST_CASE(tracking_needs_a_domain_and_a_key) {
  TmpDir dir;
  auto r = load_config(setup(dir, "", {{"acme.toml", "id = \"acme\"\n[tracking]\nclicks = true\n"}}));
  std::string org = dir / "orgs.d/acme.toml";
  BOOST_TEST(has(r, org + ":3: tracking.domain is required"), all(r));
  BOOST_TEST(has(r, org + ":3: tracking is on but no tracking key is configured"), all(r));
}

BOOST_AUTO_TEST_CASE(secrets_file_permissions_and_contents) {
  TmpDir dir;
  std::string path = secrets(dir, kKey, 0644);
  auto open = load_config(setup(dir, "[secrets]\nfile = \"secrets.toml\"\n"));
  BOOST_TEST(has(open, path + ": refusing to read a secrets file that group or others can access (mode 0644)"),
             all(open));
  secrets(dir, "[[tracking_key]]\nid = \"bad id\"\nsecret = \"c2hvcnQ=\"\ncolour = 1\n"
               "[[tracking_key]]\nid = \"x\"\n");
  auto bad = load_config(setup(dir, "[secrets]\nfile = \"secrets.toml\"\n"));
  // [[tracking_key]] tables go through the schema's table-array machinery like [[stream]].
  BOOST_TEST(has(bad, path + ":2: tracking_key: element 1: id: must be 1..32 of"), all(bad));
  BOOST_TEST(has(bad, path + ":3: tracking_key: element 1: secret: must be base64 of at least 32 bytes"), all(bad));
  BOOST_TEST(has(bad, path + ":4: tracking_key: element 1: unknown key 'colour'"), all(bad));
  BOOST_TEST(has(bad, path + ":5: tracking_key: element 2: missing required key 'secret'"), all(bad));
  BOOST_TEST(!has(bad, "c2hvcnQ"), "secrets never appear in messages");
  secrets(dir, kKey + kKey);
  auto twice = load_config(setup(dir, "[secrets]\nfile = \"secrets.toml\"\n"));
  BOOST_TEST(has(twice, path + ":4: tracking key id \"2026a\" is listed twice"), all(twice));
  auto missing = load_config(setup(dir, "[secrets]\nfile = \"nope.toml\"\n"));
  BOOST_TEST(has(missing, "secrets.file '" + (dir / "nope.toml") + "': No such file or directory"), all(missing));
  secrets(dir, kKey + "[redis]\npassword = \"s3cret-redis\"\n");
  auto pw = load_config(setup(dir, "[secrets]\nfile = \"secrets.toml\"\n"));
  BOOST_TEST_REQUIRE(pw.config != nullptr, all(pw));
  BOOST_TEST(pw.config->redis.password == "s3cret-redis");
}

// ---- streams, consent, quota ------------------------------------------------------

namespace {
const std::string kStreamsOrg =
    "id = \"acme\"\ndomains = [\"acme.example\"]\n"
    "[tracking]\nopens = true\nclicks = false\ndomain = \"t.acme.example\"\nconsent = \"implied\"\n"
    "[[stream]]\nname = \"campaigns\"\nsenders = [\"news@ACME.example\", \"marketing*@acme.example\"]\n"
    "kind = \"campaign\"\ntracking = { opens = true, clicks = true }\nconsent = \"required\"\n"
    "list_unsubscribe = true\n"
    "[[stream]]\nname = \"alerts\"\nsenders = [\"@alerts.acme.example\"]\n"
    "[quota]\nmessages = [{ per = \"1m\", max = 60 }, { per = \"1d\", max = 10000 }]\n"
    "recipients = [{ per = \"1h\", max = 5000 }]\nmax_recipients_per_message = 100\naction = \"reject\"\n";
}  // namespace

BOOST_AUTO_TEST_CASE(streams_and_quota_are_loaded_with_their_defaults) {
  TmpDir dir;
  secrets(dir, kKey);
  auto r = load_config(setup(dir, "[secrets]\nfile = \"secrets.toml\"\n", {{"acme.toml", kStreamsOrg}}));
  BOOST_TEST_REQUIRE(r.config != nullptr, all(r));
  const auto& p = r.config->policy_for("acme");
  BOOST_REQUIRE(p.streams.streams.size() == 2u);
  const auto& c = p.streams.streams[0];
  BOOST_TEST(c.name == "campaigns");
  BOOST_TEST(c.senders[0] == "news@acme.example");
  BOOST_TEST((c.kind == cllavio::policy::StreamKind::campaign));
  BOOST_TEST((c.opens && c.clicks));
  BOOST_TEST((c.consent == cllavio::policy::ConsentMode::required));
  BOOST_TEST(c.suppress_unsubscribed);  // default for campaign streams
  BOOST_TEST(c.list_unsubscribe);
  const auto& a = p.streams.streams[1];
  BOOST_TEST((a.kind == cllavio::policy::StreamKind::personal));
  BOOST_TEST((a.opens && !a.clicks));                                      // the org's [tracking]
  BOOST_TEST((a.consent == cllavio::policy::ConsentMode::implied));        // the org's tracking.consent
  BOOST_TEST(!a.suppress_unsubscribed);
  BOOST_TEST(p.streams.fallback.name == "default");
  BOOST_TEST((p.streams.fallback.consent == cllavio::policy::ConsentMode::implied));
  BOOST_TEST(p.quota.messages.size() == 2u);
  BOOST_TEST(p.quota.messages[1].per_s == 86400);
  BOOST_TEST(p.quota.messages[1].max == 10000u);
  BOOST_TEST(p.quota.recipients[0].per_s == 3600);
  BOOST_TEST(p.quota.max_recipients_per_message == 100u);
  BOOST_TEST((p.quota.action == cllavio::policy::QuotaAction::reject));
  BOOST_TEST(r.config->any_rcpt_checks);
  BOOST_TEST(r.config->any_modifications);
  // An org without any of it: one default stream, no quota, consent required.
  BOOST_TEST(r.config->policy_for("nobody").quota.empty());
}

BOOST_AUTO_TEST_CASE(default_consent_is_required) {
  TmpDir dir;
  auto r = load_config(setup(dir, "", {{"a.toml", "id = \"a\"\n"}}));
  BOOST_TEST_REQUIRE(r.config != nullptr, all(r));
  BOOST_TEST((r.config->policy_for("a").streams.fallback.consent == cllavio::policy::ConsentMode::required));
  BOOST_TEST(!r.config->any_rcpt_checks);
  BOOST_TEST(!r.config->any_modifications);
}

BOOST_AUTO_TEST_CASE(stream_and_quota_mistakes_name_file_and_line) {
  TmpDir dir;
  secrets(dir, kKey);
  std::string org =
      "id = \"acme\"\n"                                                       // 1
      "[[stream]]\n"                                                          // 2
      "name = \"p\"\n"                                                        // 3
      "suppress_unsubscribed = true\n"                                        // 4
      "[[stream]]\n"                                                          // 5
      "name = \"p\"\n"                                                        // 6
      "[[stream]]\n"                                                          // 7
      "senders = [\"nobody\"]\n"                                              // 8
      "colour = \"red\"\n"                                                    // 9
      "[[stream]]\n"                                                          // 10
      "name = \"c\"\nkind = \"campaign\"\ntracking = { opens = true }\n"       // 11-13
      "[quota]\n"                                                             // 14
      "messages = [{ per = \"1w\", max = 5 }, { max = 0, per = \"1m\" }]\n"    // 15
      "recipients = [{ per = \"1h\", max = 5 }, { per = \"60m\", max = 9 }]\n"  // 16
      "[[stream]]\n"                                                          // 17
      "name = \"d\"\nconsent = \"maybe\"\n";                                    // 18-19
  auto r = load_config(setup(dir, "", {{"acme.toml", org}}));
  BOOST_TEST(r.config == nullptr);
  std::string f = dir / "orgs.d/acme.toml";
  BOOST_TEST(has(r, f + ":4: stream \"p\": suppress_unsubscribed applies to campaign streams only"), all(r));
  BOOST_TEST(has(r, f + ":5: stream \"p\" is declared twice (first at line 2)"), all(r));
  BOOST_TEST(has(r, f + ":8: stream: element 3: senders: a sender pattern needs '@'"), all(r));
  BOOST_TEST(has(r, f + ":9: stream: element 3: unknown key 'colour'"), all(r));
  BOOST_TEST(has(r, f + ":7: stream: element 3: missing required key 'name'"), all(r));
  BOOST_TEST(has(r, f + ":10: stream \"c\": tracking or list_unsubscribe needs tracking.domain"), all(r));
  BOOST_TEST(has(r, f + ":15: quota.messages: element 1: per: invalid window \"1w\""), all(r));
  BOOST_TEST(has(r, f + ":15: quota.messages: element 2: max: value 0 out of range"), all(r));
  BOOST_TEST(has(r, f + ":16: quota.recipients: two windows of hour"), all(r));
  BOOST_TEST(has(r, f + ":19: stream: element 5: consent: invalid value \"maybe\"; expected \"required\" | \"implied\""),
             all(r));
}
