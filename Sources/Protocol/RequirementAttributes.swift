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

/// The `amounts` of a task's requirements, `{custom.licenses: 2, gpu.memory: {min: 8192, max: 49152}}`:
/// an amount the agent must have, at least a number or within a range. They become tags (see
/// `HostAmounts`).
struct AmountWish: Decodable {
    var min: Double?
    var max: Double?

    enum CodingKeys: String, CodingKey, CaseIterable { case min, max }

    init(from decoder: any Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let minimum = try? single.decode(Double.self) {
            min = minimum
            return
        }
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        min = try c.decodeIfPresent(Double.self, forKey: .min)
        max = try c.decodeIfPresent(Double.self, forKey: .max)
        guard min != nil || max != nil else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "an amount is a number (its minimum) or {min, max}"))
        }
    }
}

extension TaskRequirements {
    /// `tags` (checked) with what `attributes` and `amounts` require, as one sorted set of tags.
    static func merge(_ tags: [String], attributes: [String: AttributeWish],
                      amounts: [String: AmountWish]) throws(BrokenRule) -> [String] {
        var merged = Set(tags)
        for (name, wish) in attributes.sorted(by: { $0.key < $1.key }) {
            do throws(HostAttributes.Problem) {
                switch wish {
                case .one(let value): merged.formUnion(try HostAttributes.requirement(name, anyOf: nil, allOf: [value]))
                case .anyOf(let values): merged.formUnion(try HostAttributes.requirement(name, anyOf: values, allOf: nil))
                }
            } catch {
                throw BrokenRule(field: "attributes.\(name)", rule: error.description)
            }
        }
        for (name, wish) in amounts.sorted(by: { $0.key < $1.key }) {
            do throws(HostAmounts.Problem) {
                merged.insert(try HostAmounts.requirement(HostAmounts.written(name), min: wish.min, max: wish.max))
            } catch {
                throw BrokenRule(field: "amounts.\(name)", rule: error.description)
            }
        }
        guard merged.count <= Limits.tagCount else {
            throw BrokenRule(field: "tags", rule: "at most \(Limits.tagCount) tags, attributes and amounts included")
        }
        return merged.sorted()
    }
}
