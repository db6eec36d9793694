// What `jobstore --version` prints: the version from CMake's project(VERSION), the one place it
// is set, and the git commit the binary was built from ("-modified" when the work tree had
// changes; "unknown" outside a git checkout). Defined in a source generated at every build.
#pragma once

namespace jobstore::cli {

extern const char* const kVersion;
extern const char* const kGitCommit;

}  // namespace jobstore::cli
