// The three file schemas: the main file, one organization file (orgs.d/*.toml) and
// the secrets file.
//
// Every key, its type, default, allowed range and documentation, and every rule across
// keys, is declared once in schemas.cpp (the org file's policy part in
// org_policy_schema.cpp); the loader applies them and render_reference() documents them.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "conf/org_policy_schema.hpp"
#include "conf/schema.hpp"

namespace cllavio::conf {

// An organization file as written; converted to policy::Org after validation.
struct OrgFile {
  std::string id;
  std::string name;
  std::vector<std::string> domains;     // normalized lowercase
  std::vector<std::string> sasl_users;  // normalized lowercase
  std::vector<std::string> networks;    // canonical "addr/prefix"
  bool trust_sender_domain = false;
  tracking::TrackingPolicy tracking;    // [tracking]
  OrgPolicyFile policy;                 // tracking.consent, [[stream]], [quota]
};

// One [[tracking_key]] as written (the secret still in base64).
struct TrackingKeyFile {
  std::string id;
  std::string secret;
};

// The secrets file ([secrets] file): tracking keys and the API's credentials.
struct SecretsFile {
  std::vector<TrackingKeyFile> tracking_keys;       // [[tracking_key]], first signs
  std::string api_signing_secret;                   // [api] signing_secret
  std::map<std::string, std::string> api_org_keys;  // [api.org_keys]
  std::string redis_password;                       // [redis] password

  std::vector<tracking::TrackingKey> keys() const;  // secrets decoded (valid once the schema accepted them)
};

const Schema<Config>& main_schema();
// [quota] (backend) and [redis] of the main file, the secrets file's [redis] password
// (conf/quota_keys.cpp).
std::vector<Key<Config>> quota_backend_keys();
Key<SecretsFile> redis_password_key();
const Schema<OrgFile>& org_schema();
const Schema<SecretsFile>& secrets_schema();

// Markdown tables of every key of both schemas (docs/configuration.md embeds this).
std::string render_reference();

}  // namespace cllavio::conf
