// Internal (not the library's API): for its own sources, tests, benchmarks and fuzz targets.
// A decoder for the CBOR that nlohmann::json::to_cbor writes (RFC 8949, the JSON subset):
// unsigned and negative integers, text strings, definite arrays and maps with text keys,
// false/true/null, and half, single and double floats. Anything else (byte strings, tags,
// indefinite lengths, trailing bytes, nesting deeper than kMaxCborDepth) is rejected.
//
// Why not nlohmann::json::from_cbor: a snapshot decodes five small values per job, a million
// jobs at startup, and nlohmann's SAX machinery costs more than the values themselves
// (bench/RESULTS.md, start with a snapshot). It also throws on some malformed input even when
// asked not to.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace jobstore::internal {

inline constexpr int kMaxCborDepth = 512;

// The value `bytes` encode, exactly and completely; false when they do not encode one.
bool DecodeCbor(std::string_view bytes, nlohmann::json* out);

}  // namespace jobstore::internal
