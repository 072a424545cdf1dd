// CURVE key pairs for ZeroMQ (RFC 26 CurveZMQ) and the files that hold them.
//
// A key is 32 bytes, written as 40 characters of Z85 (ZeroMQ RFC 32).  One
// key pair lives in two files next to each other:
//
//   STEM.key  mode 0600   # comment line          the secret key: stays on this host
//                         <40 Z85 characters>
//   STEM.pub  mode 0644   # comment line          the public key: handed to peers
//                         <40 Z85 characters>
//
// Readers skip blank lines and lines starting with '#', and want exactly one
// key line.  The public half is never read from STEM.key's neighbour: it is
// derived from the secret key, so the two cannot disagree.
//
// Every error names the file (or says the text is not a key) and never
// quotes a secret key.  All functions are safe to call from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "control/common/result.h"

namespace qos::control {

/** Length of a CURVE key in bytes. */
inline constexpr size_t kCurveKeyBytes = 32;
/** Length of a CURVE key written in Z85, in characters. */
inline constexpr size_t kCurveKeyZ85Chars = 40;

/** A CURVE key pair, both halves as 40-character Z85 texts. */
struct CurveKeyPair {
  std::string public_z85;  ///< may be given to anyone
  std::string secret_z85;  ///< must stay private
};

/**
 * A fresh key pair (zmq_curve_keypair).
 * @return the pair, or an Error (ErrorCode::Internal) when this libzmq was
 *         built without CURVE.
 */
Result<CurveKeyPair> generateCurveKeyPair();

/**
 * Writes @p pair to STEM.key (the secret key; created with mode 0600, so it
 * is never readable by others, not even while it is being written) and
 * STEM.pub (the public key; mode 0644).  Neither file may exist already.  If
 * the second file cannot be written, the first is removed again.
 * @param stem path without extension, e.g. "/etc/qosgate/curve/qosmgr"
 * @return nothing, or an Error naming the file: it exists (ErrorCode::Invalid),
 *         the pair is not a valid key pair (ErrorCode::Invalid), or it cannot be
 *         created or written.
 */
Result<void> writeCurveKeyFiles(const std::string& stem, const CurveKeyPair& pair);

/**
 * Reads a secret key file (STEM.key) and derives its public key
 * (zmq_curve_public).  A file that group or others may read, write or execute
 * is refused (ErrorCode::Invalid, with "chmod 600" in the message), as ssh
 * refuses such private keys.
 * @return the key pair, or an Error naming @p path.
 */
Result<CurveKeyPair> loadCurveSecretKey(const std::string& path);

/**
 * The public key that belongs to @p secret_z85 (zmq_curve_public).
 * @return the public key as Z85 text, or an Error (ErrorCode::Invalid) if
 *         @p secret_z85 is not a key.
 */
Result<std::string> deriveCurvePublicKey(std::string_view secret_z85);

/**
 * A public key given either as itself or as the path of a file (STEM.pub)
 * holding it.  A path that names something is read as a file, whatever its
 * length: many paths (/tmp/run.xyz/keys/qosmgr.pub) are 40 valid Z85
 * characters.  Otherwise text that is exactly 40 characters of valid Z85 is
 * taken as the key; anything else is read as a path.
 * @return the key as Z85 text, or an Error (ErrorCode::Invalid) naming the
 *         file or saying that the text is not a key.
 */
Result<std::string> loadCurvePublicKey(const std::string& file_or_z85);

/**
 * Decodes a Z85 CURVE key after checking its length and alphabet
 * (zmq_z85_decode itself does not check the length).
 * @return the 32 key bytes, or an Error (ErrorCode::Invalid) that does not
 *         quote the text, since it may be a secret key.
 */
Result<std::array<uint8_t, kCurveKeyBytes>> decodeZ85Key(std::string_view z85);

/** The 40-character Z85 text of a 32-byte key (zmq_z85_encode). */
std::string encodeZ85Key(std::span<const uint8_t, kCurveKeyBytes> key);

}  // namespace qos::control
