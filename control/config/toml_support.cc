#include "control/config/toml_support.h"

#include <algorithm>
#include <sstream>

#include "control/common/units.h"

namespace qos::config {

Result<toml::table> parseTomlFile(const std::string& path) {
  try {
    return toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source();
    std::string file = where.path ? std::string(*where.path) : path;
    // toml++ reports a missing file as a parse error at 0:0.
    if (where.begin.line == 0) {
      return makeError(file + ": " + std::string(e.description()));
    }
    return makeError(file + ":" + std::to_string(where.begin.line) + ":" +
                     std::to_string(where.begin.column) + ": " + std::string(e.description()));
  }
}

Result<toml::table> parseTomlText(std::string_view text, const std::string& source_name) {
  try {
    return toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source();
    return makeError(source_name + ":" + std::to_string(where.begin.line) + ":" +
                     std::to_string(where.begin.column) + ": " + std::string(e.description()));
  }
}

std::string formatLocation(const toml::source_region& region) {
  std::string file = region.path ? std::string(*region.path) : std::string("<config>");
  return file + ":" + std::to_string(region.begin.line) + ":" + std::to_string(region.begin.column);
}

void ConfigReader::fail(const toml::source_region& region, std::string_view path,
                        std::string_view message) {
  if (error_) {
    return;
  }
  std::string line = formatLocation(region) + ": ";
  if (!path.empty()) {
    line += std::string(path) + ": ";
  }
  line += message;
  error_ = Error{std::move(line)};
}

Section::Section(ConfigReader& reader, const toml::table& table, std::string path)
    : reader_(&reader), table_(&table), path_(std::move(path)) {}

std::string Section::keyPath(std::string_view key) const {
  if (path_.empty()) {
    return std::string(key);
  }
  return path_ + "." + std::string(key);
}

void Section::markKnown(std::string_view key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
    known_.emplace_back(key);
  }
}

const toml::node* Section::node(std::string_view key) {
  markKnown(key);
  return table_->get(key);
}

const toml::node* Section::find(std::string_view key, Need need, const char* type_name) {
  markKnown(key);
  const toml::node* n = table_->get(key);
  if (n == nullptr && need == Need::Required) {
    reader_->fail(table_->source(), keyPath(key),
                  std::string("missing (expected ") + type_name + ")");
  }
  return n;
}

std::optional<std::string> Section::getString(std::string_view key, Need need) {
  const toml::node* n = find(key, need, "a string");
  if (n == nullptr) {
    return std::nullopt;
  }
  if (const auto* s = n->as_string()) {
    return s->get();
  }
  reader_->fail(n->source(), keyPath(key), "expected a string");
  return std::nullopt;
}

std::optional<int64_t> Section::getInt(std::string_view key, int64_t min, int64_t max, Need need) {
  const toml::node* n = find(key, need, "an integer");
  if (n == nullptr) {
    return std::nullopt;
  }
  const auto* i = n->as_integer();
  if (i == nullptr) {
    reader_->fail(n->source(), keyPath(key), "expected an integer");
    return std::nullopt;
  }
  const int64_t v = i->get();
  if (v < min || v > max) {
    std::ostringstream msg;
    msg << v << " is out of range " << min << ".." << max;
    reader_->fail(n->source(), keyPath(key), msg.str());
    return std::nullopt;
  }
  return v;
}

std::optional<bool> Section::getBool(std::string_view key, Need need) {
  const toml::node* n = find(key, need, "true or false");
  if (n == nullptr) {
    return std::nullopt;
  }
  if (const auto* b = n->as_boolean()) {
    return b->get();
  }
  reader_->fail(n->source(), keyPath(key), "expected true or false");
  return std::nullopt;
}

std::optional<uint64_t> Section::getRateBitsPerSec(std::string_view key, Need need) {
  const toml::node* n = find(key, need, "a rate such as \"1mbit\"");
  if (n == nullptr) {
    return std::nullopt;
  }
  const auto* s = n->as_string();
  if (s == nullptr) {
    reader_->fail(n->source(), keyPath(key), "expected a rate string with a unit, e.g. \"1mbit\"");
    return std::nullopt;
  }
  auto rate = parseRateBitsPerSec(s->get());
  if (!rate) {
    reader_->fail(n->source(), keyPath(key), rate.error().message);
    return std::nullopt;
  }
  return *rate;
}

std::optional<uint64_t> Section::getSizeBytes(std::string_view key, Need need) {
  const toml::node* n = find(key, need, "a size such as \"16kB\"");
  if (n == nullptr) {
    return std::nullopt;
  }
  const auto* s = n->as_string();
  if (s == nullptr) {
    reader_->fail(n->source(), keyPath(key), "expected a size string with a unit, e.g. \"16kB\"");
    return std::nullopt;
  }
  auto size = parseSizeBytes(s->get());
  if (!size) {
    reader_->fail(n->source(), keyPath(key), size.error().message);
    return std::nullopt;
  }
  return *size;
}

std::optional<std::vector<std::string>> Section::getStringArray(std::string_view key, Need need) {
  const toml::node* n = find(key, need, "an array of strings");
  if (n == nullptr) {
    return std::nullopt;
  }
  const auto* arr = n->as_array();
  if (arr == nullptr) {
    reader_->fail(n->source(), keyPath(key), "expected an array of strings");
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < arr->size(); ++i) {
    const auto* s = (*arr)[i].as_string();
    if (s == nullptr) {
      reader_->fail((*arr)[i].source(), keyPath(key) + "[" + std::to_string(i) + "]",
                    "expected a string");
      return std::nullopt;
    }
    out.push_back(s->get());
  }
  return out;
}

std::optional<PortRange> Section::getPortRange(std::string_view key) {
  const toml::node* n = find(key, Need::Optional, "a port or a range");
  if (n == nullptr) {
    return PortRange{};
  }
  if (const auto* i = n->as_integer()) {
    if (i->get() < 0 || i->get() > 65535) {
      reader_->fail(n->source(), keyPath(key),
                    std::to_string(i->get()) + " is out of range 0..65535");
      return std::nullopt;
    }
    return *parsePortRange(std::to_string(i->get()));
  }
  if (const auto* str = n->as_string()) {
    auto range = parsePortRange(str->get());
    if (!range) {
      reader_->fail(n->source(), keyPath(key), range.error().message);
      return std::nullopt;
    }
    return *range;
  }
  reader_->fail(n->source(), keyPath(key),
                "expected a port number or a range string \"FIRST-LAST\"");
  return std::nullopt;
}

std::optional<Section> Section::getTable(std::string_view key, Need need) {
  const toml::node* n = find(key, need, "a table");
  if (n == nullptr) {
    return std::nullopt;
  }
  if (const auto* t = n->as_table()) {
    return Section(*reader_, *t, keyPath(key));
  }
  reader_->fail(n->source(), keyPath(key), "expected a table");
  return std::nullopt;
}

std::vector<Section> Section::getTableArray(std::string_view key) {
  std::vector<Section> out;
  const toml::node* n = find(key, Need::Optional, "an array of tables");
  if (n == nullptr) {
    return out;
  }
  const auto* arr = n->as_array();
  if (arr == nullptr) {
    reader_->fail(n->source(), keyPath(key),
                  "expected an array of tables ([[" + std::string(key) + "]])");
    return out;
  }
  for (size_t i = 0; i < arr->size(); ++i) {
    const auto* t = (*arr)[i].as_table();
    const std::string item_path = keyPath(key) + "[" + std::to_string(i) + "]";
    if (t == nullptr) {
      reader_->fail((*arr)[i].source(), item_path, "expected a table");
      return {};
    }
    out.emplace_back(*reader_, *t, item_path);
  }
  return out;
}

void Section::failAt(std::string_view key, std::string_view message) {
  const toml::node* n = table_->get(key);
  reader_->fail(n != nullptr ? n->source() : table_->source(), keyPath(key), message);
}

void Section::fail(std::string_view message) { reader_->fail(table_->source(), path_, message); }

void Section::rejectUnknownKeys() {
  for (const auto& [key, value] : *table_) {
    if (std::find(known_.begin(), known_.end(), key.str()) == known_.end()) {
      reader_->fail(key.source(), keyPath(key.str()), "unknown key");
      return;
    }
  }
}

}  // namespace qos::config
