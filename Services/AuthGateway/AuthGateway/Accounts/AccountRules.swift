import Foundation
import Platform

/// The validation rules of account fields; each failure is a 422 naming the field.
enum AccountRules {
    /// 3–50 characters of letters, digits, `_`, `.`, `-`.
    static func validate(username: String) throws {
        guard (3...50).contains(username.count) else {
            throw APIError.validation(field: "username", reason: "must be 3 to 50 characters long")
        }
        guard username.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_.-".unicodeScalars.contains($0)) }) else {
            throw APIError.validation(field: "username", reason: "may contain only letters, digits, '_', '.' and '-'")
        }
    }

    /// `local@domain.tld`: one `@`, no spaces, a dot in the domain with non-empty labels, at most 254 characters.
    static func validate(email: String) throws {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        let valid = email.count <= 254
            && parts.count == 2
            && !parts[0].isEmpty && parts[0].count <= 64
            && !email.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0.properties.isWhitespace })
            && parts[1].split(separator: ".", omittingEmptySubsequences: false).count >= 2
            && parts[1].split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
                !label.isEmpty && !label.hasPrefix("-") && !label.hasSuffix("-")
                    && label.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" }
            }
        guard valid else { throw APIError.validation(field: "email", reason: "must be a valid email address") }
    }

    /// At least 8 characters with a letter and a digit; at most 72 bytes, bcrypt's limit.
    static func validate(password: String, field: String = "password") throws {
        guard password.count >= 8 else {
            throw APIError.validation(field: field, reason: "must be at least 8 characters long")
        }
        guard password.utf8.count <= 72 else {
            throw APIError.validation(field: field, reason: "must be at most 72 bytes long")
        }
        guard password.contains(where: \.isLetter), password.contains(where: \.isNumber) else {
            throw APIError.validation(field: field, reason: "must contain a letter and a digit")
        }
        // bcrypt reads a C string: a NUL would end the password early.
        guard !password.utf8.contains(0) else {
            throw APIError.validation(field: field, reason: "must not contain NUL characters")
        }
    }

    /// Up to 200 characters, no control characters.
    static func validate(fullName: String) throws {
        guard TextRules.isName(fullName, allowEmpty: true) else {
            throw APIError.validation(field: "full_name", reason: "must be at most 200 characters without control characters")
        }
    }
}
