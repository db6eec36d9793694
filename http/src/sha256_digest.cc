#include "sha256_digest.h"

#include <openssl/evp.h>

#include <algorithm>
#include <memory>

namespace jobstore::http {
namespace {

// Fetched once and kept for the process's life (freed by OpenSSL's exit handler).
EVP_MD* Sha256Algorithm() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

// One digest context per thread, set up once and re-initialized for each digest: EVP_Digest()
// would allocate, initialize and free a context on every call (~2 % of a create in perf).
EVP_MD_CTX* ThreadContext() {
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(
      EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  return ctx.get();
}

bool DigestInto(std::string_view data, Sha256Bytes& out) {
  EVP_MD* md = Sha256Algorithm();
  EVP_MD_CTX* ctx = ThreadContext();
  unsigned int length = 0;
  return md != nullptr && ctx != nullptr && EVP_DigestInit_ex2(ctx, md, nullptr) == 1 &&
         EVP_DigestUpdate(ctx, data.data(), data.size()) == 1 &&
         EVP_DigestFinal_ex(ctx, out.data(), &length) == 1 && length == out.size();
}

}  // namespace

Sha256Bytes Sha256Digest(std::string_view data) {
  Sha256Bytes out;
  if (DigestInto(data, out)) return out;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
  return out;
}

std::string Sha256Hex(std::string_view data, std::size_t bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  const Sha256Bytes digest = Sha256Digest(data);
  std::string hex;
  for (std::size_t i = 0; i < std::min(bytes, digest.size()); ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

}  // namespace jobstore::http
