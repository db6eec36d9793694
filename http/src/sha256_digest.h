// SHA-256 of a byte string through a digest fetched from OpenSSL's provider once per process and a
// context kept per thread. OpenSSL 3's one-shot SHA256() fetches the algorithm and builds a
// context on every call (a provider lookup under a lock; ~4 % of a create's HTTP thread), which an
// idempotent create and a token check would pay each time.
#pragma once

#include <openssl/sha.h>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace jobstore::http {

using Sha256Bytes = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

// The same digest as SHA256(data): if the fetched digest is unavailable or fails, it falls back
// to the one-shot call, so the answer never depends on which path ran.
Sha256Bytes Sha256Digest(std::string_view data);

// The first `bytes` bytes (at most all 32) of Sha256Digest(data), in lowercase hex.
std::string Sha256Hex(std::string_view data, std::size_t bytes = SHA256_DIGEST_LENGTH);

}  // namespace jobstore::http
