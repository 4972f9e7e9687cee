// The host path of a file seen in another mount namespace, from the two
// mount tables (trace/mount_paths.h): pure text in, text out.

#include "trace/mount_paths.h"

#include <gtest/gtest.h>

using vmatrace::host_path_of;
using vmatrace::parse_mountinfo;

namespace {

// The tracer's table: / on 8:1, /srv a second file system 8:2, /proc, a
// tmpfs at /dev/shm, an overlay (docker's merged directory).
const char* kHost =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "23 22 8:2 / /srv rw,relatime shared:2 - ext4 /dev/sda2 rw\n"
    "24 22 0:21 / /proc rw,nosuid shared:3 - proc proc rw\n"
    "25 22 0:25 / /dev/shm rw shared:4 - tmpfs tmpfs rw\n"
    "26 22 0:60 / /var/lib/docker/overlay2/abc/merged rw shared:5 - overlay overlay rw,lowerdir=x\n"
    "27 22 8:1 /home/u/with\\040space /mnt/bound rw - ext4 /dev/sda1 rw\n";

}  // namespace

TEST(MountPaths, ParsesFieldsAndUndoesOctalEscapes) {
  const auto t = parse_mountinfo(std::string(kHost) + "garbage line\n28 22 x:y / /bad rw - x x x\n");
  ASSERT_EQ(t.size(), 6u);
  EXPECT_EQ(t[1].major, 8u);
  EXPECT_EQ(t[1].minor, 2u);
  EXPECT_EQ(t[1].mount_point, "/srv");
  EXPECT_EQ(t[5].root, "/home/u/with space");
  EXPECT_EQ(t[5].mount_point, "/mnt/bound");
}

TEST(MountPaths, BindMountedPrivateTmpIsItsHostDirectory) {
  // unshare --mount; mount --bind /srv/c1/tmp /tmp: in the namespace /tmp is
  // 8:2's directory /c1/tmp.
  const auto host = parse_mountinfo(kHost);
  const auto ns = parse_mountinfo(
      "100 99 8:1 / / rw - ext4 /dev/sda1 rw\n"
      "101 100 8:2 / /srv rw - ext4 /dev/sda2 rw\n"
      "102 100 8:2 /c1/tmp /tmp rw - ext4 /dev/sda2 rw\n");
  EXPECT_EQ(host_path_of(ns, host, "/tmp/data.bin"), "/srv/c1/tmp/data.bin");
  EXPECT_EQ(host_path_of(ns, host, "/tmp"), "/srv/c1/tmp");
  // Not below the bind mount: the same path (the caller drops it).
  EXPECT_EQ(host_path_of(ns, host, "/usr/lib/libc.so.6"), "/usr/lib/libc.so.6");
  // A prefix that is not a whole component is not below /tmp.
  EXPECT_EQ(host_path_of(ns, host, "/tmpfoo/x"), "/tmpfoo/x");
}

TEST(MountPaths, ContainerRootOnOverlayIsTheMergedDirectory) {
  const auto host = parse_mountinfo(kHost);
  const auto ns = parse_mountinfo(
      "300 250 0:60 / / rw - overlay overlay rw\n"
      "301 300 0:61 / /proc rw - proc proc rw\n"
      "302 300 0:25 /c1 /dev/shm rw - tmpfs tmpfs rw\n");
  EXPECT_EQ(host_path_of(ns, host, "/usr/bin/app"), "/var/lib/docker/overlay2/abc/merged/usr/bin/app");
  EXPECT_EQ(host_path_of(ns, host, "/dev/shm/seg"), "/dev/shm/c1/seg");
  EXPECT_EQ(host_path_of(ns, host, "/"), "/var/lib/docker/overlay2/abc/merged");
}

TEST(MountPaths, LaterMountHidesEarlierOneAtTheSameMountPoint) {
  const auto host = parse_mountinfo(kHost);
  const auto ns = parse_mountinfo(
      "100 99 8:1 / / rw - ext4 /dev/sda1 rw\n"
      "101 100 8:1 /var/a /data rw - ext4 /dev/sda1 rw\n"
      "102 101 8:2 /b /data rw - ext4 /dev/sda2 rw\n");
  EXPECT_EQ(host_path_of(ns, host, "/data/f"), "/srv/b/f");
}

TEST(MountPaths, HostBindMountWithTheLongestRootWins) {
  // 8:1's /home/u/with space is also seen at /mnt/bound on the host.
  const auto host = parse_mountinfo(kHost);
  const auto ns = parse_mountinfo(
      "100 99 8:1 / / rw - ext4 /dev/sda1 rw\n"
      "101 100 8:1 /home/u/with\\040space/sub /w rw - ext4 /dev/sda1 rw\n");
  EXPECT_EQ(host_path_of(ns, host, "/w/f"), "/mnt/bound/sub/f");
}

TEST(MountPaths, FileSystemTheHostDoesNotMountHasNoHostPath) {
  const auto host = parse_mountinfo(kHost);
  const auto ns = parse_mountinfo(
      "100 99 8:1 / / rw - ext4 /dev/sda1 rw\n"
      "101 100 0:99 / /tmp rw - tmpfs tmpfs rw\n");  // the namespace's own tmpfs
  EXPECT_EQ(host_path_of(ns, host, "/tmp/x"), std::nullopt);
  EXPECT_EQ(host_path_of(ns, host, "relative"), std::nullopt);
  EXPECT_EQ(host_path_of({}, host, "/x"), std::nullopt);
}
