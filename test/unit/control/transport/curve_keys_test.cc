#include "control/transport/curve_keys.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

namespace qos::control {
namespace {

namespace fs = std::filesystem;

/** A fresh directory under the system's temp dir, removed with everything in it. */
class TempDir {
public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "curve_keys_test.XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) {
      path_ = pattern;
    }
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
  fs::path path_;
};

/** Sets the umask for the life of the object, since the file modes must not depend on it. */
class ScopedUmask {
public:
  explicit ScopedUmask(mode_t mask) : old_(umask(mask)) {}
  ~ScopedUmask() { umask(old_); }
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;

private:
  mode_t old_;
};

mode_t modeOf(const std::string& path) {
  struct stat info {};
  EXPECT_EQ(stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

void writeText(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class CurveKeysTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    Result<CurveKeyPair> pair = generateCurveKeyPair();
    ASSERT_TRUE(pair.ok()) << pair.error().message;
    pair_ = *pair;
  }

  /** A second, different valid key, as Z85. */
  static std::string otherKey() {
    Result<CurveKeyPair> other = generateCurveKeyPair();
    return other ? other->public_z85 : std::string();
  }

  TempDir dir_;
  CurveKeyPair pair_;
};

TEST_F(CurveKeysTest, GeneratedPairIsTwoDifferentValidKeys) {
  EXPECT_EQ(pair_.public_z85.size(), kCurveKeyZ85Chars);
  EXPECT_EQ(pair_.secret_z85.size(), kCurveKeyZ85Chars);
  EXPECT_NE(pair_.public_z85, pair_.secret_z85);
  EXPECT_TRUE(decodeZ85Key(pair_.public_z85).ok());
  EXPECT_TRUE(decodeZ85Key(pair_.secret_z85).ok());
  Result<std::string> derived = deriveCurvePublicKey(pair_.secret_z85);
  ASSERT_TRUE(derived.ok()) << derived.error().message;
  EXPECT_EQ(*derived, pair_.public_z85);
}

TEST_F(CurveKeysTest, WriteThenLoadRoundTrips) {
  const std::string stem = dir_.file("qosmgr");
  ASSERT_TRUE(writeCurveKeyFiles(stem, pair_).ok());

  Result<CurveKeyPair> loaded = loadCurveSecretKey(stem + ".key");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->secret_z85, pair_.secret_z85);
  EXPECT_EQ(loaded->public_z85, pair_.public_z85) << "derived public key must match";

  Result<std::string> public_key = loadCurvePublicKey(stem + ".pub");
  ASSERT_TRUE(public_key.ok()) << public_key.error().message;
  EXPECT_EQ(*public_key, pair_.public_z85);
}

TEST_F(CurveKeysTest, FilesHaveACommentLineThenTheKey) {
  const std::string stem = dir_.file("host");
  ASSERT_TRUE(writeCurveKeyFiles(stem, pair_).ok());
  for (const auto& [path, key] :
       {std::pair{stem + ".key", pair_.secret_z85}, std::pair{stem + ".pub", pair_.public_z85}}) {
    std::ifstream in(path);
    std::string comment;
    std::string key_line;
    std::string rest;
    ASSERT_TRUE(std::getline(in, comment));
    ASSERT_TRUE(std::getline(in, key_line));
    EXPECT_FALSE(std::getline(in, rest)) << path;
    EXPECT_EQ(comment.front(), '#') << path;
    EXPECT_EQ(key_line, key) << path;
  }
}

TEST_F(CurveKeysTest, ModesAreExactWhateverTheUmask) {
  for (const mode_t mask : {mode_t{0}, mode_t{022}, mode_t{077}}) {
    const ScopedUmask scoped(mask);
    const std::string stem = dir_.file("umask" + std::to_string(mask));
    ASSERT_TRUE(writeCurveKeyFiles(stem, pair_).ok());
    EXPECT_EQ(modeOf(stem + ".key"), 0600U) << "umask " << mask;
    EXPECT_EQ(modeOf(stem + ".pub"), 0644U) << "umask " << mask;
  }
}

TEST_F(CurveKeysTest, RefusesToOverwriteEitherFile) {
  const std::string stem = dir_.file("taken");
  ASSERT_TRUE(writeCurveKeyFiles(stem, pair_).ok());
  const Result<CurveKeyPair> second = generateCurveKeyPair();
  ASSERT_TRUE(second.ok());

  const Result<void> again = writeCurveKeyFiles(stem, *second);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::Invalid);
  EXPECT_TRUE(contains(again.error().message, stem + ".key")) << again.error().message;
  EXPECT_EQ(loadCurveSecretKey(stem + ".key")->secret_z85, pair_.secret_z85) << "left as it was";

  // Only the .pub is there: refused, and no .key is left behind.
  const std::string half = dir_.file("half");
  writeText(half + ".pub", "# someone else's\n" + pair_.public_z85 + "\n", 0644);
  const Result<void> refused = writeCurveKeyFiles(half, *second);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::Invalid);
  EXPECT_TRUE(contains(refused.error().message, half + ".pub")) << refused.error().message;
  EXPECT_FALSE(fs::exists(half + ".key"));
}

TEST_F(CurveKeysTest, RefusesAMismatchedPair) {
  CurveKeyPair mixed{otherKey(), pair_.secret_z85};
  const Result<void> result = writeCurveKeyFiles(dir_.file("mixed"), mixed);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::Invalid);
  EXPECT_FALSE(fs::exists(dir_.file("mixed.key")));
}

TEST_F(CurveKeysTest, RefusesASecretKeyFileOthersCanReachAndSaysChmod) {
  const std::string stem = dir_.file("loose");
  ASSERT_TRUE(writeCurveKeyFiles(stem, pair_).ok());
  const std::string path = stem + ".key";
  for (const mode_t mode : {mode_t{0640}, mode_t{0604}, mode_t{0620}, mode_t{0602}}) {
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
    const Result<CurveKeyPair> loaded = loadCurveSecretKey(path);
    ASSERT_FALSE(loaded.ok()) << "mode " << mode;
    EXPECT_EQ(loaded.error().code, ErrorCode::Invalid);
    EXPECT_TRUE(contains(loaded.error().message, path)) << loaded.error().message;
    EXPECT_TRUE(contains(loaded.error().message, "chmod 600")) << loaded.error().message;
    EXPECT_FALSE(contains(loaded.error().message, pair_.secret_z85));
  }
  ASSERT_EQ(chmod(path.c_str(), 0400), 0);
  EXPECT_TRUE(loadCurveSecretKey(path).ok()) << "read-only for the owner is fine";
}

TEST_F(CurveKeysTest, ReadersSkipCommentsAndBlankLines) {
  const std::string path = dir_.file("commented.key");
  writeText(path, "# one\n\n   \n  # two, indented\r\n  " + pair_.secret_z85 + "  \r\n\n# three\n",
            0600);
  const Result<CurveKeyPair> loaded = loadCurveSecretKey(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->public_z85, pair_.public_z85);
}

TEST_F(CurveKeysTest, MalformedFilesAreRefusedWithTheFileNamed) {
  const std::string other = otherKey();
  struct Case {
    std::string name;
    std::string text;
    std::string expected;  ///< part of the message after the file name
  };
  const std::vector<Case> cases = {
      {"two-keys", "# two\n" + pair_.secret_z85 + "\n" + other + "\n", ":3: a second key"},
      {"bad-chars", "# bad\n" + pair_.secret_z85.substr(0, 39) + "~\n", ":2: not a CURVE key"},
      {"short", "# short\n" + pair_.secret_z85.substr(0, 35) + "\n", "40 Z85 characters, not 35"},
      {"long", pair_.secret_z85 + "abcde\n", "40 Z85 characters, not 45"},
      {"overflow", pair_.secret_z85.substr(0, 5) + "%%%%%" + pair_.secret_z85.substr(10) + "\n",
       "exceeds 32 bits"},
      {"empty", "", "no key in the file"},
      {"only-comments", "# nothing\n\n#\n", "no key in the file"},
  };
  for (const Case& c : cases) {
    for (const char* extension : {".key", ".pub"}) {
      const std::string path = dir_.file(c.name + extension);
      writeText(path, c.text, 0600);
      const Error error = std::string(extension) == ".key" ? loadCurveSecretKey(path).error()
                                                           : loadCurvePublicKey(path).error();
      EXPECT_EQ(error.code, ErrorCode::Invalid) << path;
      EXPECT_EQ(error.message.rfind(path, 0), 0U) << "names the file first: " << error.message;
      EXPECT_TRUE(contains(error.message, c.expected)) << error.message;
      EXPECT_FALSE(contains(error.message, pair_.secret_z85.substr(5, 30)))
          << "never quotes the key: " << error.message;
    }
  }
}

TEST_F(CurveKeysTest, MissingFilesAreNamed) {
  const std::string path = dir_.file("absent.key");
  const Result<CurveKeyPair> secret = loadCurveSecretKey(path);
  ASSERT_FALSE(secret.ok());
  EXPECT_TRUE(contains(secret.error().message, path)) << secret.error().message;

  const Result<std::string> public_key = loadCurvePublicKey(dir_.file("absent.pub"));
  ASSERT_FALSE(public_key.ok());
  EXPECT_TRUE(contains(public_key.error().message, dir_.file("absent.pub")));

  const Result<CurveKeyPair> directory = loadCurveSecretKey(dir_.file(""));
  ASSERT_FALSE(directory.ok());
  EXPECT_TRUE(contains(directory.error().message, "not a regular file"));
}

TEST_F(CurveKeysTest, PublicKeyInlineOrFromFile) {
  const Result<std::string> inline_key = loadCurvePublicKey(pair_.public_z85);
  ASSERT_TRUE(inline_key.ok()) << inline_key.error().message;
  EXPECT_EQ(*inline_key, pair_.public_z85);

  const std::string stem = dir_.file("peer");
  ASSERT_TRUE(writeCurveKeyFiles(stem, pair_).ok());
  const Result<std::string> from_file = loadCurvePublicKey(stem + ".pub");
  ASSERT_TRUE(from_file.ok()) << from_file.error().message;
  EXPECT_EQ(*from_file, pair_.public_z85);

  // A path of 40 Z85 characters that names a file is read as the file.
  const std::string short_dir = "/tmp/q" + std::to_string(::getpid());
  const std::string z85_path =
      short_dir + "/" + std::string(40 - short_dir.size() - 5, 'k') + ".pub";
  ASSERT_EQ(z85_path.size(), 40u);
  ASSERT_TRUE(decodeZ85Key(z85_path).ok()) << "the path is valid Z85 text too";
  std::filesystem::create_directories(short_dir);
  ASSERT_TRUE(writeCurveKeyFiles(z85_path.substr(0, z85_path.size() - 4), pair_).ok());
  const Result<std::string> from_z85_path = loadCurvePublicKey(z85_path);
  std::filesystem::remove_all(short_dir);
  ASSERT_TRUE(from_z85_path.ok()) << from_z85_path.error().message;
  EXPECT_EQ(*from_z85_path, pair_.public_z85);

  // 40 characters, but not Z85 and no such file: says both.
  const std::string not_a_key(40, '~');
  const Result<std::string> neither = loadCurvePublicKey(not_a_key);
  ASSERT_FALSE(neither.ok());
  EXPECT_EQ(neither.error().code, ErrorCode::Invalid);
  EXPECT_TRUE(contains(neither.error().message, "is neither a CURVE public key"))
      << neither.error().message;
  EXPECT_TRUE(contains(neither.error().message, "not a Z85 character")) << neither.error().message;
}

TEST(Z85KeyTest, DecodeChecksLengthAndAlphabet) {
  const Result<CurveKeyPair> pair = generateCurveKeyPair();
  ASSERT_TRUE(pair.ok());
  const auto decoded = decodeZ85Key(pair->public_z85);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(encodeZ85Key(*decoded), pair->public_z85);

  EXPECT_FALSE(decodeZ85Key("").ok());
  EXPECT_FALSE(decodeZ85Key(pair->public_z85 + "x").ok());
  EXPECT_FALSE(decodeZ85Key(pair->public_z85.substr(0, 39)).ok());
  std::string with_space = pair->public_z85;
  with_space[7] = ' ';
  const auto bad = decodeZ85Key(with_space);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::Invalid);
  EXPECT_TRUE(contains(bad.error().message, "character 8 of 40")) << bad.error().message;
  std::string with_nul = pair->public_z85;
  with_nul[3] = '\0';
  EXPECT_FALSE(decodeZ85Key(with_nul).ok()) << "an embedded NUL must not shorten the key";
  EXPECT_FALSE(decodeZ85Key(std::string(40, '#')).ok()) << "each group exceeds 32 bits";
}

}  // namespace
}  // namespace qos::control
