import Foundation

/// The `attributes` of a task's requirements, `{os.family: linux, custom.host_config: [HostConfigA, HostConfigB]}`:
/// a value the agent must have, or a list of which it must have one. They become tags (see
/// `HostAttributes`), which is what the task view shows.
enum AttributeWish: Decodable {
    case one(String)
    case anyOf([String])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let value = try? c.decode(String.self) {
            self = .one(value)
        } else {
            self = .anyOf(try c.decode([String].self))
        }
    }
}

extension TaskRequirements {
    static func merge<K: CodingKey>(_ tags: [String], attributes: [String: AttributeWish],
                                    _ c: KeyedDecodingContainer<K>) throws -> [String] {
        var merged = Set(tags)
        for (name, wish) in attributes.sorted(by: { $0.key < $1.key }) {
            do throws(HostAttributes.Problem) {
                switch wish {
                case .one(let value): merged.formUnion(try HostAttributes.requirement(name, anyOf: nil, allOf: [value]))
                case .anyOf(let values): merged.formUnion(try HostAttributes.requirement(name, anyOf: values, allOf: nil))
                }
            } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + [AttributeKey("attributes") as any CodingKey, AttributeKey(name)],
                                                        debugDescription: error.description))
            }
        }
        guard merged.count <= Limits.tagCount else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath,
                debugDescription: "at most \(Limits.tagCount) tags, attributes included"))
        }
        return merged.sorted()
    }
}

/// A key of the `attributes` mapping, for an error's path.
struct AttributeKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}
