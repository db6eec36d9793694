// Retrying a start-up step while NATS or JetStream does not answer yet.
//
// NATS servers that are starting refuse connections, a cluster that just started elects its
// JetStream leader first (its API times out meanwhile), and a busy server answers an API request
// late. An instance's start waits these out instead of failing: `attempt` is called until it
// returns anything but kUnavailable, or until `deadline` has passed (then its last status is
// returned), pausing 500 ms between calls and logging "replication: waiting for WHAT: <message>"
// at each retry.
#pragma once

#include <chrono>
#include <functional>
#include <string_view>

#include "jobstore/core/status.h"

namespace jobstore::replication {

// How long an instance's start waits for NATS, and again for JetStream (README, "Several instances").
inline constexpr std::chrono::seconds kStartWait{30};

Status WaitWhileUnavailable(std::string_view what, std::chrono::steady_clock::time_point deadline,
                            const std::function<Status()>& attempt);

}  // namespace jobstore::replication
