import Foundation

/// One encoder and decoder configuration for the whole wire: ISO 8601 UTC times, sorted keys.
public enum WireJSON {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// A decoding failure said in one line a user can act on: where (the field's path, e.g.
    /// `tasks[0].command`), what is wrong, and how to write it when that is not obvious. No Swift
    /// type names: people write these files, not programs.
    public static func describe(_ error: any Error) -> PaddockError {
        if let refusal = error as? PaddockError { return refusal }  // a decoder's own answer (413 for a template too big)
        if let broken = error as? BrokenRule { return broken.refusal }  // the validation step's
        guard let error = error as? DecodingError else { return .malformed("body is not valid JSON") }
        func path(_ keys: [any CodingKey]) -> String? {
            let parts = keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            guard !parts.isEmpty else { return nil }
            return parts.reduce("") { acc, part in
                part.hasPrefix("[") || acc.isEmpty ? acc + part : acc + "." + part
            }
        }
        /// "where: what", or just "what" at the top of the document.
        func at(_ keys: [any CodingKey], _ message: String) -> String {
            path(keys).map { "\($0): \(message)" } ?? message
        }
        switch error {
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return .malformed("body is not valid JSON") }
            // An unknown field is said at its parent ("tasks[0]: unknown field 'comand' (did you mean...)").
            let unknown = context.debugDescription.hasPrefix("unknown field")
            return .invalid(at(unknown ? Array(context.codingPath.dropLast()) : context.codingPath, context.debugDescription),
                            field: path(context.codingPath))
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return .invalid(at(context.codingPath, "missing field '\(key.stringValue)'" +
                (context.debugDescription.hasPrefix("No value") ? "" : ": \(context.debugDescription)")), field: field)
        case .typeMismatch(let type, let context):
            return .invalid(at(context.codingPath, mismatch(expected: type, context)), field: path(context.codingPath))
        case .valueNotFound(let type, let context):
            return .invalid(at(context.codingPath, "missing value: expected \(kind(type))"), field: path(context.codingPath))
        @unknown default:
            return .malformed("body could not be decoded")
        }
    }

    /// "expected a list of arguments, found a string", with how to write a command.
    static func mismatch(expected type: Any.Type, _ context: DecodingError.Context) -> String {
        var message = "expected \(kind(type))"
        // Foundation says "Expected to decode X but found a string instead."
        if let range = context.debugDescription.range(of: "but found "),
           let end = context.debugDescription.range(of: " instead", range: range.upperBound..<context.debugDescription.endIndex) {
            message += ", found " + context.debugDescription[range.upperBound..<end.lowerBound]
        }
        if let last = context.codingPath.last?.stringValue, ["command", "args", "argv"].contains(last),
           String(describing: type).hasPrefix("Array") {
            message += #"; write the command as a list of arguments, e.g. ["sh", "-c", "echo hi"] (it runs without a shell)"#
        }
        return message
    }

    /// What a person calls the kind of value a Swift type decodes.
    static func kind(_ type: Any.Type) -> String {
        let name = String(describing: type)
        if name.hasPrefix("Array") || name.hasPrefix("Set") { return "a list" }
        if name.hasPrefix("Dictionary") { return "a mapping" }
        switch name {
        case "String", "Substring": return "a string"
        case "Int", "Int8", "Int16", "Int32", "Int64", "UInt", "UInt8", "UInt16", "UInt32", "UInt64": return "a whole number"
        case "Double", "Float", "Decimal": return "a number"
        case "Bool": return "true or false"
        case "Data": return "base64 text"
        case "Date": return "a date and time (ISO 8601)"
        default: return "a value of another kind"
        }
    }
}
