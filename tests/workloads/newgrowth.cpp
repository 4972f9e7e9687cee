// A C++ operator new that grows memory (an mmapped chunk), from a named
// member function: the malloc_growth must name the C++ caller, demangled.
// Writes "step FUNCTION operator new mmap PTR SIZE" to argv[1].
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

namespace store {

struct Table {
  char rows[6 << 20];
  __attribute__((noinline)) static Table* build();
};

Table* Table::build() {
  auto* t = new Table;
  t->rows[0] = 1;
  return t;
}

}  // namespace store

int main(int argc, char** argv) {
  if (argc < 2) return 1;
  int fd = ::open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return 1;
  std::unique_ptr<store::Table> t(store::Table::build());
  char line[256];
  int n = std::snprintf(line, sizeof(line), "step store::Table::build() operator_new mmap %p %zu 0 0\n",
                        static_cast<void*>(t.get()), sizeof(store::Table));
  if (::write(fd, line, static_cast<size_t>(n)) != n) return 2;
  ::close(fd);
  return 0;
}
