// Reading TOML configs the same way everywhere: every error is one line,
// "FILE:LINE:COLUMN: key.path: what is wrong", and unknown keys are errors.
//
// A ConfigReader keeps the first error only; callers read every field they
// know through a Section and check failed() once at the end, so loaders stay
// straight-line code instead of a ladder of early returns.  toml++ throws on
// syntax errors; parseTomlFile() catches that at the call and converts it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "control/common/port_range.h"
#include "control/common/result.h"

namespace qos::config {

/** Parses a TOML file; a syntax error comes back as "FILE:LINE:COLUMN: message". */
Result<toml::table> parseTomlFile(const std::string& path);

/** Parses TOML text; @p source_name stands in for the file name in errors. */
Result<toml::table> parseTomlText(std::string_view text, const std::string& source_name);

/** "FILE:LINE:COLUMN" of a source region (toml++ keeps the file name in it). */
std::string formatLocation(const toml::source_region& region);

/** Collects the first error of a load. */
class ConfigReader {
public:
  /** Records an error at @p region for key @p path, unless one is already recorded. */
  void fail(const toml::source_region& region, std::string_view path, std::string_view message);
  bool failed() const { return error_.has_value(); }
  /** The first error.  Only valid when failed(). */
  const Error& error() const { return *error_; }

private:
  std::optional<Error> error_;
};

/** Whether a key must be there. */
enum class Need { Optional, Required };

/**
 * One TOML table seen through a ConfigReader.  Every get*() marks the key as
 * known; rejectUnknownKeys() then reports the first key nobody asked for.
 * Getters return nullopt when the key is missing or wrong (the error, if any,
 * is already recorded).
 */
class Section {
public:
  Section(ConfigReader& reader, const toml::table& table, std::string path);

  const std::string& path() const { return path_; }
  const toml::table& table() const { return *table_; }
  bool has(std::string_view key) const { return table_->contains(key); }

  std::optional<std::string> getString(std::string_view key, Need need = Need::Optional);
  std::optional<int64_t> getInt(std::string_view key, int64_t min, int64_t max,
                                Need need = Need::Optional);
  std::optional<bool> getBool(std::string_view key, Need need = Need::Optional);
  /** A rate string with its unit ("1mbit"); returns bits per second. */
  std::optional<uint64_t> getRateBitsPerSec(std::string_view key, Need need = Need::Optional);
  /** A size string with its unit ("16kB"); returns bytes. */
  std::optional<uint64_t> getSizeBytes(std::string_view key, Need need = Need::Optional);
  std::optional<std::vector<std::string>> getStringArray(std::string_view key,
                                                         Need need = Need::Optional);
  /** A port (integer, 0 = any) or a range string "FIRST-LAST"; missing = any port. */
  std::optional<PortRange> getPortRange(std::string_view key);
  /** A sub-table (standard or inline). */
  std::optional<Section> getTable(std::string_view key, Need need = Need::Optional);
  /** An array of tables ([[key]]); empty when missing. */
  std::vector<Section> getTableArray(std::string_view key);

  /** Marks a key as known without reading it (the caller reads it by hand). */
  void markKnown(std::string_view key);
  /** The node of a key, for callers that parse a value themselves; marks it known. */
  const toml::node* node(std::string_view key);

  /** Records an error at the value of @p key (or at this table if it is missing). */
  void failAt(std::string_view key, std::string_view message);
  /** Records an error at this table. */
  void fail(std::string_view message);

  /** Reports the first key of this table that no getter asked for. */
  void rejectUnknownKeys();

  ConfigReader& reader() { return *reader_; }

private:
  std::string keyPath(std::string_view key) const;
  const toml::node* find(std::string_view key, Need need, const char* type_name);

  ConfigReader* reader_;
  const toml::table* table_;
  std::string path_;
  std::vector<std::string> known_;
};

}  // namespace qos::config
