#include "sha256_digest.h"

#include <openssl/evp.h>

namespace jobstore::http {

Sha256Bytes Sha256Digest(std::string_view data) {
  // Fetched once and kept for the process's life (freed by OpenSSL's exit handler).
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  Sha256Bytes out;
  unsigned int length = 0;
  if (kSha256 != nullptr &&
      EVP_Digest(data.data(), data.size(), out.data(), &length, kSha256, nullptr) == 1 &&
      length == out.size()) {
    return out;
  }
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
  return out;
}

}  // namespace jobstore::http
