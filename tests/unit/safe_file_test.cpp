// util/safe_file.h: the one way vmatrace creates an output file.
#include "util/safe_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/errors.h"

namespace vmatrace {
namespace {

namespace fs = std::filesystem;

class Dir {
 public:
  Dir() {
    std::string tmpl = (fs::temp_directory_path() / "vmat_safe_file.XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~Dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

void put(const std::string& path, const std::string& text) { std::ofstream(path) << text; }
std::string get(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string error_of(const std::string& path, bool force) {
  try {
    OutputFileOptions o;
    o.force = force;
    create_output_file(path, o);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(SafeFile, CreatesANewFileWithMode0600) {
  Dir d;
  UniqueFd fd = create_output_file(d / "out");
  ASSERT_TRUE(fd);
  write_all(fd.get(), "abc", 3, d / "out");
  fd.reset();
  EXPECT_EQ(get(d / "out"), "abc");
  struct stat st {};
  ASSERT_EQ(::stat((d / "out").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST(SafeFile, ExistingFileIsRefusedWithoutForceAndReplacedWithIt) {
  Dir d;
  put(d / "out", "precious");
  EXPECT_EQ(error_of(d / "out", false), (d / "out") + " exists; use --force to overwrite");
  EXPECT_EQ(get(d / "out"), "precious");
  struct stat before {};
  ASSERT_EQ(::stat((d / "out").c_str(), &before), 0);
  UniqueFd fd = create_output_file(d / "out", {.force = true});
  write_all(fd.get(), "new", 3, d / "out");
  fd.reset();
  EXPECT_EQ(get(d / "out"), "new");
}

TEST(SafeFile, SymlinkIsNeverFollowedWithOrWithoutForce) {
  Dir d;
  put(d / "victim", "victim");
  fs::create_symlink(d / "victim", d / "link");
  fs::create_symlink(d / "nowhere", d / "dangling");
  for (bool force : {false, true}) {
    for (const char* name : {"link", "dangling"}) {
      std::string err = error_of(d / name, force);
      EXPECT_NE(err.find("is a symbolic link; refusing to write through it"), std::string::npos)
          << name << " force=" << force << ": " << err;
      EXPECT_EQ(err.find('\n'), std::string::npos) << err;
    }
  }
  EXPECT_EQ(get(d / "victim"), "victim");
  EXPECT_TRUE(fs::is_symlink(d / "link"));
  EXPECT_TRUE(fs::is_symlink(d / "dangling"));
  EXPECT_FALSE(fs::exists(d / "nowhere"));
}

TEST(SafeFile, ForceRefusesWhatIsNotARegularFile) {
  Dir d;
  fs::create_directory(d / "dir");
  EXPECT_NE(error_of(d / "dir", true).find("not a regular file"), std::string::npos);
  EXPECT_TRUE(fs::is_directory(d / "dir"));
}

TEST(SafeFile, UnwritablePlaceSaysSoInOneLine) {
  Dir d;
  std::string err = error_of(d / "no/such/dir/x", false);
  EXPECT_NE(err.find("cannot write " + (d / "no/such/dir/x")), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

}  // namespace
}  // namespace vmatrace
