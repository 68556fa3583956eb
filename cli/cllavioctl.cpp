// cllavioctl: the admin CLI. Reads the same configuration as the daemon.
//
//   cllavioctl [-c FILE] check                 validate (same as cllavio-milter -n)
//   cllavioctl [-c FILE] messages [--org ID] [--json] [--limit N]
//   cllavioctl [-c FILE] show QUEUEID
//   cllavioctl [-c FILE] rewrite --org ID [--rcpt ADDR]... [--report FILE] < in.eml > out.eml
//   cllavioctl [-c FILE] token verify URL_OR_TOKEN
//   cllavioctl [-c FILE] tracking stats [--org ID] [--since 24h] [--json]
//   cllavioctl [-c FILE] consent grant|revoke|unsubscribe|show ORG ADDR | import ORG FILE.csv | export ORG
//   cllavioctl [-c FILE] quota show ORG [--json] | quota reset ORG
//   cllavioctl [-c FILE] audit [--since 24h] [--json]
//   cllavioctl [-c FILE] outbox stats [--json] | list [--dead] [--limit N] | retry-dead | flush
//   cllavioctl [-c FILE] delivery stats [--org ID] [--since 7d] [--json] | delivery follow [--json]
//   cllavioctl [-c FILE] export ORG ADDRESS | export --all-orgs ADDRESS
//   cllavioctl [-c FILE] store stats [--json] | store compact
//   cllavioctl [-c FILE] doctor [-C POSTFIX_CONFIG_DIR]... [--json] [--offline]
//   cllavioctl config-reference [--man]        print every configuration key (Markdown, or cllavio.toml(5))
#include <cstdio>
#include <csignal>
#include <cstring>
#include <string>

#include "cli/commands.hpp"
#include "conf/loader.hpp"
#include "conf/reference_man.hpp"
#include "conf/schemas.hpp"

namespace {

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: cllavioctl [-c FILE] COMMAND [ARGS]\n"
               "  -c FILE                      main configuration file (default %s)\n"
               "commands:\n"
               "  check                        validate the configuration (exit 0, or 78 with file:line problems)\n"
               "  messages [--org ID] [--json] [--limit N]\n"
               "                               list recorded messages, oldest first (--json: one object per line)\n"
               "  show QUEUEID                 print the record(s) of a Postfix queue id as JSON\n"
               "  rewrite --org ID [--from ADDR] [--rcpt ADDR]... [--report FILE] [--message-id HEX]\n"
               "                               write stdin's message as the milter would send it\n"
               "  token verify URL_OR_TOKEN    check a tracking token and print what it carries\n"
               "  tracking stats [--org ID] [--since 24h|7d] [--json]\n"
               "                               per org: messages tracked, unchanged, skipped (by reason)\n"
               "  consent grant|revoke|unsubscribe ORG ADDRESS [--source SOURCE]\n"
               "                               record a recipient's consent (audited)\n"
               "  consent show ORG ADDRESS     a recipient's consent as JSON\n"
               "  consent import ORG FILE.csv  address,state[,timestamp] lines; bad lines are reported\n"
               "  consent export ORG           CSV of every recorded recipient\n"
               "  quota show ORG [--json]      usage of every quota window\n"
               "  quota reset ORG              forget what the org has sent (audited)\n"
               "  audit [--since 24h] [--json] consent changes and quota resets\n"
               "  outbox stats [--json]        events waiting for the Cllavio API: queued, oldest, dead, dropped\n"
               "  outbox list [--dead] [--limit N]\n"
               "                               queued events (or the ones the API refused)\n"
               "  outbox retry-dead            queue the refused events again\n"
               "  outbox flush                 send what is queued now and report\n"
               "  delivery stats [--org ID] [--since 24h|7d] [--json]\n"
               "                               per org: recipients delivered, deferred, bounced, expired; top bounce codes\n"
               "  delivery follow [--json]     the log follower's position, lag, pending lines and gaps\n"
               "  erase ORG ADDRESS [--json]   erase everything the store holds of ADDRESS in ORG (audited;\n"
               "                               an unsubscribe or bounce stays as a keyed hash); subject.erased queued\n"
               "  erase --all-orgs ADDRESS [--json]\n"
               "                               the same in every org, records of no org included\n"
               "  export ORG ADDRESS           everything the store holds naming ADDRESS in ORG, as JSON\n"
               "  export --all-orgs ADDRESS    the same over every org (and mail of no org)\n"
               "  store stats [--json]         map and file size, use, per table entries/pages/oldest, last prune\n"
               "  store compact                rewrite the store without its free pages (stop cllavio-milter first)\n"
               "  doctor [-C POSTFIX_CONFIG_DIR]... [--json] [--offline]\n"
               "                               check Postfix's milter settings and the milter's health (docs/doctor.md);\n"
               "                               exit 0 nothing wrong, 1 warnings, 2 errors\n"
               "  config-reference [--man]     print the reference of every configuration key (Markdown;\n"
               "                               --man: the cllavio.toml(5) man page source)\n",
               cllavio::conf::kDefaultConfigPath);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cllavio;
  std::signal(SIGPIPE, SIG_IGN);  // a peer that closed (Redis, the API) is an error return, not a death
  std::string config_path = conf::kDefaultConfigPath;
  int i = 1;
  for (; i < argc; ++i) {
    if (std::strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else if (std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (std::strcmp(argv[i], "-V") == 0 || std::strcmp(argv[i], "--version") == 0) {
      std::printf("cllavioctl %s\n", CLLAVIO_VERSION);
      return 0;
    } else {
      break;
    }
  }
  if (i >= argc) {
    usage(stderr);
    return cli::kExitUsage;
  }
  std::string cmd = argv[i++];
  cli::Args args(argv + i, argv + argc);
  try {
    if (cmd == "check" && args.empty()) return conf::check_config(config_path, stdout, stderr);
    if (cmd == "messages") return cli::cmd_messages(config_path, args);
    if (cmd == "show") return cli::cmd_show(config_path, args);
    if (cmd == "rewrite") return cli::cmd_rewrite(config_path, args);
    if (cmd == "token") return cli::cmd_token(config_path, args);
    if (cmd == "consent") return cli::cmd_consent(config_path, args);
    if (cmd == "quota") return cli::cmd_quota(config_path, args);
    if (cmd == "audit") return cli::cmd_audit(config_path, args);
    if (cmd == "outbox") return cli::cmd_outbox(config_path, args);
    if (cmd == "delivery") return cli::cmd_delivery(config_path, args);
    if (cmd == "erase") return cli::cmd_erase(config_path, args);
    if (cmd == "export") return cli::cmd_export(config_path, args);
    if (cmd == "store") return cli::cmd_store(config_path, args);
    if (cmd == "doctor") return cli::cmd_doctor(config_path, args);
    if (cmd == "tracking" && !args.empty() && args[0] == "stats")
      return cli::cmd_tracking_stats(config_path, cli::Args(args.begin() + 1, args.end()));
    if (cmd == "config-reference" && args.empty()) {
      std::fputs(conf::render_reference().c_str(), stdout);
      return 0;
    }
    if (cmd == "config-reference" && args.size() == 1 && args[0] == "--man") {
      std::fputs(conf::render_reference_man().c_str(), stdout);
      return 0;
    }
  } catch (const std::exception& e) {
    // A corrupt record or an LMDB failure: say so instead of aborting.
    std::fflush(stdout);
    std::fprintf(stderr, "cllavioctl: %s: %s\n", cmd.c_str(), e.what());
    return cli::kExitUnavailable;
  }
  std::fprintf(stderr, "cllavioctl: unknown command or arguments: %s\n", cmd.c_str());
  usage(stderr);
  return cli::kExitUsage;
}
