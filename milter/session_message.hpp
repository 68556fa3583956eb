// One SMTP transaction of a Connection (internal to session.cpp).
//
// Counts itself in Services::in_flight while it exists, so a SIGTERM drain knows when
// every message it accepted has been answered. Its QuotaHold gives back the recipients
// it reserved unless they were charged, however the transaction ends (end of message,
// abort, a new MAIL FROM, an internal error, the connection closing).
#pragma once

#include <atomic>
#include <optional>
#include <string>

#include "core/message.hpp"
#include "core/quota.hpp"

namespace cllavio::milter {

struct Connection::Message {
  explicit Message(std::atomic<int>* counter) : in_flight(counter) {
    if (in_flight) in_flight->fetch_add(1);
  }
  ~Message() {
    hold.reset();  // before the message stops counting as in flight
    if (in_flight) in_flight->fetch_sub(1);
  }
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;

  std::atomic<int>* in_flight;
  core::MessageState state;
  std::optional<core::QuotaHold> hold;  // for orgs with a quota
  std::string failure;                  // internal error seen in a step without reply
};

}  // namespace cllavio::milter
