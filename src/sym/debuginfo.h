#pragma once
// Where libdw looks for a module's separate debug info (docs/malloc.md, "How
// symbols are found"): the Unwinder's Dwfl find_debuginfo callback.
//
// Local files first, as libdw's dwfl_standard_find_debuginfo searches them:
// by build id under each directory of the search path
// (DIR/.build-id/xx/yyyy.debug), then by the binary's .gnu_debuglink name
// next to it, in its .debug/ and under each directory. The debuginfod
// servers of DEBUGINFOD_URLS (libdw's last resort, which can stall for
// seconds per object and sends build ids off the machine) only when asked
// (--debuginfod), with a bounded wait, and not again once a server failed.

#include <elfutils/libdwfl.h>

#include <string>

namespace vmatrace {

struct DebuginfoSearch {
  // libdw's search path: ":.debug:/usr/lib/debug", then each --debug-dir.
  std::string path;
  bool debuginfod = false;  // --debuginfod: the DEBUGINFOD_URLS servers last
};

// The Dwfl_Callbacks::find_debuginfo of the Unwinder; *userdata is the
// module's DebuginfoSearch (set with set_debuginfo_search).
int find_debuginfo(Dwfl_Module* mod, void** userdata, const char* modname, Dwarf_Addr base, const char* file_name,
                   const char* debuglink_file, GElf_Word debuglink_crc, char** debuginfo_file_name);
// The search find_debuginfo does for mod (it must outlive mod's Dwfl).
void set_debuginfo_search(Dwfl_Module* mod, const DebuginfoSearch* search);

// For --debuginfod: DEBUGINFOD_TIMEOUT (seconds libdebuginfod waits for a
// server) 5 and DEBUGINFOD_RETRY_LIMIT 0 (one try), unless the user set
// them: a server that does not answer costs 5 s once. Call before any
// thread starts.
void bound_debuginfod_wait();

}  // namespace vmatrace
