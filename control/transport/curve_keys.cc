#include "control/transport/curve_keys.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

namespace qos::control {
namespace {

/** The 85 characters of Z85 (ZeroMQ RFC 32), in the order of their values. */
constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
/** A key file is about 120 bytes; anything much larger is not one. */
constexpr off_t kMaxKeyFileBytes = off_t{64} * 1024;
constexpr mode_t kSecretFileMode = 0600;
constexpr mode_t kPublicFileMode = 0644;
/** Bits that let group or others at a secret key file. */
constexpr mode_t kNotOwnerBits = S_IRWXG | S_IRWXO;

std::string errnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

/** A file descriptor closed when it goes out of scope. */
class FileDescriptor {
public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  int get() const { return fd_; }
  /** Closes now, so that a failing close() is seen.  @return 0 or the errno. */
  int close() {
    const int rc = ::close(std::exchange(fd_, -1));
    return rc == 0 ? 0 : errno;
  }

private:
  int fd_;
};

/** A key file's text and its permission bits. */
struct KeyFileText {
  std::string text;
  mode_t mode = 0;
};

/**
 * Reads a whole small regular file.  O_NONBLOCK keeps open() from waiting
 * on a FIFO that was named by mistake; it changes nothing for regular files.
 */
Result<KeyFileText> readKeyFile(const std::string& path, const char* what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    return makeError(ErrorCode::Invalid,
                     std::string("cannot read ") + what + " " + path + ": " + errnoText(errno));
  }
  FileDescriptor file(fd);
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    return makeError(ErrorCode::Invalid,
                     std::string("cannot read ") + what + " " + path + ": " + errnoText(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    return makeError(ErrorCode::Invalid, path + ": not a regular file, so not a " + what);
  }
  if (info.st_size > kMaxKeyFileBytes) {
    return makeError(ErrorCode::Invalid, path + ": " + std::to_string(info.st_size) +
                                             " bytes is too large for a " + what);
  }
  KeyFileText result;
  result.mode = info.st_mode;
  std::array<char, 4096> buffer{};
  while (true) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return makeError(ErrorCode::Invalid,
                       std::string("cannot read ") + what + " " + path + ": " + errnoText(errno));
    }
    if (n == 0) {
      break;
    }
    result.text.append(buffer.data(), static_cast<size_t>(n));
    if (result.text.size() > static_cast<size_t>(kMaxKeyFileBytes)) {
      return makeError(ErrorCode::Invalid, path + ": too large for a " + std::string(what));
    }
  }
  std::fill(buffer.begin(), buffer.end(), '\0');
  return result;
}

std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  const size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) {
    return {};
  }
  const size_t last = text.find_last_not_of(kSpace);
  return text.substr(first, last - first + 1);
}

/**
 * The one key line of a key file: blank lines and lines starting with '#'
 * are skipped, and the key must decode.  '#' is a Z85 character, but never
 * the first of a key: "#" is digit 84, and 84 * 85^4 exceeds 32 bits.
 * @return the key as Z85 text, or an Error "PATH:LINE: ..." that does not quote the file.
 */
Result<std::string> parseKeyFile(const std::string& path, std::string_view text) {
  std::optional<std::string_view> key;
  size_t key_line = 0;
  size_t line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    const std::string_view line = trim(text.substr(start, end - start));
    start = end + 1;
    ++line_number;
    if (line.empty() || line.front() == '#') {
      continue;
    }
    if (key) {
      return makeError(ErrorCode::Invalid, path + ":" + std::to_string(line_number) +
                                               ": a second key (the first is on line " +
                                               std::to_string(key_line) +
                                               "); a key file holds exactly one key");
    }
    key = line;
    key_line = line_number;
  }
  if (!key) {
    return makeError(ErrorCode::Invalid, path + ": no key in the file (only blank and '#' lines)");
  }
  const auto decoded = decodeZ85Key(*key);
  if (!decoded) {
    return makeError(ErrorCode::Invalid, path + ":" + std::to_string(key_line) +
                                             ": not a CURVE key: " + decoded.error().message);
  }
  return std::string(*key);
}

/** Whether @p path names anything, even a dangling symlink. */
bool exists(const std::string& path) {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0 || errno != ENOENT;
}

Error alreadyExists(const std::string& path) {
  return makeError(ErrorCode::Invalid, path + " already exists; refusing to overwrite it");
}

/**
 * Creates @p path, which must not exist, with exactly @p mode and @p text.
 * O_EXCL makes creation and the existence check one step, so a file (or a
 * symlink planted there) is never written through; the mode is given to
 * open(), so the file never has wider permissions, and fchmod() then undoes
 * what the umask took away.  A file that cannot be written in full is removed.
 */
Result<void> createFile(const std::string& path, mode_t mode, std::string_view text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return alreadyExists(path);
    }
    return makeError(ErrorCode::Invalid, "cannot create " + path + ": " + errnoText(errno));
  }
  FileDescriptor file(fd);
  const auto fail = [&path, &file](const char* step, int err) -> Error {
    file.close();
    ::unlink(path.c_str());
    return makeError(std::string("cannot ") + step + " " + path + ": " + errnoText(err));
  };
  if (::fchmod(fd, mode) != 0) {
    return fail("set the mode of", errno);
  }
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail("write", errno);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    return fail("sync", errno);
  }
  if (const int err = file.close(); err != 0) {
    ::unlink(path.c_str());
    return makeError("cannot write " + path + ": " + errnoText(err));
  }
  return {};
}

/** The last path component of @p path. */
std::string baseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

Result<std::array<uint8_t, kCurveKeyBytes>> decodeZ85Key(std::string_view z85) {
  if (z85.size() != kCurveKeyZ85Chars) {
    return makeError(ErrorCode::Invalid,
                     "a CURVE key is 40 Z85 characters, not " + std::to_string(z85.size()));
  }
  for (size_t i = 0; i < z85.size(); ++i) {
    if (kZ85Alphabet.find(z85[i]) == std::string_view::npos) {
      return makeError(ErrorCode::Invalid,
                       "character " + std::to_string(i + 1) + " of 40 is not a Z85 character");
    }
  }
  // zmq_z85_decode wants a NUL-terminated string; a string_view need not be.
  std::array<char, kCurveKeyZ85Chars + 1> text{};
  std::copy(z85.begin(), z85.end(), text.begin());
  std::array<uint8_t, kCurveKeyBytes> key{};
  const bool decoded = zmq_z85_decode(key.data(), text.data()) != nullptr;
  std::fill(text.begin(), text.end(), '\0');
  if (!decoded) {
    // Every character is in the alphabet, so a group of five encodes more than 32 bits.
    return makeError(ErrorCode::Invalid, "not valid Z85: a group of 5 characters exceeds 32 bits");
  }
  return key;
}

std::string encodeZ85Key(std::span<const uint8_t, kCurveKeyBytes> key) {
  std::array<char, kCurveKeyZ85Chars + 1> text{};
  zmq_z85_encode(text.data(), key.data(), key.size());
  return std::string(text.data(), kCurveKeyZ85Chars);
}

Result<std::string> deriveCurvePublicKey(std::string_view secret_z85) {
  if (const auto decoded = decodeZ85Key(secret_z85); !decoded) {
    return decoded.error();
  }
  std::array<char, kCurveKeyZ85Chars + 1> secret{};
  std::copy(secret_z85.begin(), secret_z85.end(), secret.begin());
  std::array<char, kCurveKeyZ85Chars + 1> public_z85{};
  const int rc = zmq_curve_public(public_z85.data(), secret.data());
  std::fill(secret.begin(), secret.end(), '\0');
  if (rc != 0) {
    return makeError("cannot derive a CURVE public key (is libzmq built with CURVE?): " +
                     errnoText(zmq_errno()));
  }
  return std::string(public_z85.data(), kCurveKeyZ85Chars);
}

Result<CurveKeyPair> generateCurveKeyPair() {
  std::array<char, kCurveKeyZ85Chars + 1> public_z85{};
  std::array<char, kCurveKeyZ85Chars + 1> secret_z85{};
  if (zmq_curve_keypair(public_z85.data(), secret_z85.data()) != 0) {
    return makeError("cannot generate a CURVE key pair (is libzmq built with CURVE?): " +
                     errnoText(zmq_errno()));
  }
  CurveKeyPair pair{std::string(public_z85.data(), kCurveKeyZ85Chars),
                    std::string(secret_z85.data(), kCurveKeyZ85Chars)};
  std::fill(secret_z85.begin(), secret_z85.end(), '\0');
  return pair;
}

Result<void> writeCurveKeyFiles(const std::string& stem, const CurveKeyPair& pair) {
  if (stem.empty()) {
    return makeError(ErrorCode::Invalid, "no file name given for the CURVE key files");
  }
  if (const auto public_key = decodeZ85Key(pair.public_z85); !public_key) {
    return makeError(ErrorCode::Invalid,
                     "not writing " + stem + ".pub: bad public key: " + public_key.error().message);
  }
  const Result<std::string> derived = deriveCurvePublicKey(pair.secret_z85);
  if (!derived) {
    return makeError(derived.error().code,
                     "not writing " + stem + ".key: bad secret key: " + derived.error().message);
  }
  if (*derived != pair.public_z85) {
    return makeError(ErrorCode::Invalid,
                     "not writing " + stem + ".key: the public key is not the secret key's");
  }
  const std::string key_path = stem + ".key";
  const std::string pub_path = stem + ".pub";
  // Checked before the secret file is created, so that the common mistake
  // leaves nothing behind; createFile() checks again, atomically.
  for (const std::string* path : {&key_path, &pub_path}) {
    if (exists(*path)) {
      return alreadyExists(*path);
    }
  }
  const std::string secret_text =
      "# qosgate CURVE secret key (Z85). Keep it private; its public key is in " +
      baseName(pub_path) + ".\n" + pair.secret_z85 + "\n";
  if (Result<void> written = createFile(key_path, kSecretFileMode, secret_text); !written) {
    return written;
  }
  const std::string public_text =
      "# qosgate CURVE public key (Z85), for the peers that must know this host.\n" +
      pair.public_z85 + "\n";
  if (Result<void> written = createFile(pub_path, kPublicFileMode, public_text); !written) {
    ::unlink(key_path.c_str());
    return written;
  }
  return {};
}

Result<CurveKeyPair> loadCurveSecretKey(const std::string& path) {
  Result<KeyFileText> file = readKeyFile(path, "secret key file");
  if (!file) {
    return file.error();
  }
  if ((file->mode & kNotOwnerBits) != 0) {
    std::array<char, 8> octal{};
    std::snprintf(octal.data(), octal.size(), "%04o", static_cast<unsigned>(file->mode & 07777));
    return makeError(ErrorCode::Invalid, "secret key file " + path + " has mode " + octal.data() +
                                             ", so others may read or change it; run chmod 600 " +
                                             path);
  }
  Result<std::string> secret = parseKeyFile(path, file->text);
  std::fill(file->text.begin(), file->text.end(), '\0');
  if (!secret) {
    return secret.error();
  }
  const Result<std::string> public_z85 = deriveCurvePublicKey(*secret);
  if (!public_z85) {
    return makeError(path + ": " + public_z85.error().message);
  }
  return CurveKeyPair{*public_z85, std::move(*secret)};
}

Result<std::string> loadCurvePublicKey(const std::string& file_or_z85) {
  struct stat st {};
  const bool names_a_file = ::stat(file_or_z85.c_str(), &st) == 0;
  const auto inline_key = decodeZ85Key(file_or_z85);
  if (inline_key && !names_a_file) {
    return file_or_z85;
  }
  Result<KeyFileText> file = readKeyFile(file_or_z85, "public key file");
  if (!file) {
    if (file_or_z85.size() == kCurveKeyZ85Chars) {
      // Meant as a key, most likely: say why it is not one.
      return makeError(ErrorCode::Invalid,
                       "\"" + file_or_z85 + "\" is neither a CURVE public key (" +
                           inline_key.error().message + ") nor a readable file (" +
                           file.error().message + ")");
    }
    return file.error();
  }
  return parseKeyFile(file_or_z85, file->text);
}

}  // namespace qos::control
