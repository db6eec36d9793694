// Internal: the dashboard's files, compiled in from http/dashboard/ by CMake.
#pragma once

namespace jobstore::http {

extern const char kDashboard_index_html[];
extern const char kDashboard_app_js[];
extern const char kDashboard_style_css[];

}  // namespace jobstore::http
