using System.Globalization;
using System.Text;

namespace Sextant.Core.Tracking.Search;

internal enum SearchTokenKind
{
    Word,
    Number,
    SingleQuoted,
    DoubleQuoted,
    BacktickQuoted,
    Operator,
    LeftParen,
    RightParen,
    Comma,
    End,
}

/// <summary>
/// One lexical token of a search expression. <see cref="Text"/> is the unescaped content of a quoted
/// token and the source text otherwise; <see cref="Raw"/> is always the exact source text.
/// </summary>
internal sealed record SearchToken(SearchTokenKind Kind, string Text, string Raw, int Position, double Number = 0)
{
    public int EndPosition => Position + Raw.Length;

    public bool IsStringValue => Kind is SearchTokenKind.SingleQuoted or SearchTokenKind.DoubleQuoted;

    public bool IsQuotedKey => Kind is SearchTokenKind.BacktickQuoted or SearchTokenKind.DoubleQuoted;

    public bool IsKeyword(string keyword) =>
        Kind == SearchTokenKind.Word && string.Equals(Text, keyword, StringComparison.OrdinalIgnoreCase);
}

/// <summary>Splits a filter or order_by clause into tokens; the list always ends with an End token.</summary>
internal static class SearchTokenizer
{
    public static List<SearchToken> Tokenize(string source, Func<int, string, SearchSyntaxException> error)
    {
        var tokens = new List<SearchToken>();
        var i = 0;
        while (i < source.Length)
        {
            var c = source[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
                continue;
            }

            var token = c switch
            {
                '\'' => ReadQuoted(source, i, SearchTokenKind.SingleQuoted, error),
                '"' => ReadQuoted(source, i, SearchTokenKind.DoubleQuoted, error),
                '`' => ReadQuoted(source, i, SearchTokenKind.BacktickQuoted, error),
                '(' => Simple(SearchTokenKind.LeftParen, source, i, 1),
                ')' => Simple(SearchTokenKind.RightParen, source, i, 1),
                ',' => Simple(SearchTokenKind.Comma, source, i, 1),
                '=' => Simple(SearchTokenKind.Operator, source, i, 1),
                '!' when At(source, i + 1) == '=' => Simple(SearchTokenKind.Operator, source, i, 2),
                '<' when At(source, i + 1) is '=' or '>' => Simple(SearchTokenKind.Operator, source, i, 2),
                '>' when At(source, i + 1) == '=' => Simple(SearchTokenKind.Operator, source, i, 2),
                '<' or '>' => Simple(SearchTokenKind.Operator, source, i, 1),
                _ when StartsNumber(source, i) => ReadNumber(source, i, error),
                _ when char.IsLetter(c) || c == '_' => ReadWord(source, i),
                _ => throw error(i, $"unexpected character '{c}'"),
            };
            tokens.Add(token);
            i = token.EndPosition;
        }

        tokens.Add(new SearchToken(SearchTokenKind.End, "", "", source.Length));
        return tokens;
    }

    private static char At(string s, int i) => i < s.Length ? s[i] : '\0';

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c is '_' or '.' or '-' or '/' or ':';

    private static SearchToken Simple(SearchTokenKind kind, string s, int start, int length)
    {
        var raw = s.Substring(start, length);
        return new SearchToken(kind, raw, raw, start);
    }

    private static SearchToken ReadWord(string s, int start) =>
        Simple(SearchTokenKind.Word, s, start, Skip(s, start, IsWordChar) - start);

    private static int Skip(string s, int i, Func<char, bool> predicate)
    {
        while (i < s.Length && predicate(s[i]))
        {
            i++;
        }

        return i;
    }

    private static SearchToken ReadQuoted(
        string s, int start, SearchTokenKind kind, Func<int, string, SearchSyntaxException> error)
    {
        var quote = s[start];
        var text = new StringBuilder();
        var i = start + 1;
        while (true)
        {
            if (i >= s.Length)
            {
                throw error(start, $"unterminated quoted text; missing closing {quote}");
            }

            if (s[i] != quote)
            {
                text.Append(s[i++]);
            }
            else if (At(s, i + 1) == quote)
            {
                text.Append(quote); // a doubled quote stands for one literal quote
                i += 2;
            }
            else
            {
                return new SearchToken(kind, text.ToString(), s[start..(i + 1)], start);
            }
        }
    }

    private static bool StartsNumber(string s, int i)
    {
        if (At(s, i) is '+' or '-')
        {
            i++;
        }

        return char.IsAsciiDigit(At(s, i)) || (At(s, i) == '.' && char.IsAsciiDigit(At(s, i + 1)));
    }

    private static SearchToken ReadNumber(string s, int start, Func<int, string, SearchSyntaxException> error)
    {
        var end = start;
        if (At(s, end) is '+' or '-')
        {
            end++;
        }

        end = Skip(s, end, char.IsAsciiDigit);
        if (At(s, end) == '.')
        {
            end = Skip(s, end + 1, char.IsAsciiDigit);
        }

        if (At(s, end) is 'e' or 'E')
        {
            var exponent = At(s, end + 1) is '+' or '-' ? end + 2 : end + 1;
            if (char.IsAsciiDigit(At(s, exponent)))
            {
                end = Skip(s, exponent, char.IsAsciiDigit);
            }
        }

        var bad = Skip(s, end, IsWordChar); // "12abc" or "1.2.3" is one malformed number, not two tokens
        if (bad > end)
        {
            throw error(start, $"invalid number '{s[start..bad]}'");
        }

        var raw = s[start..end];
        var value = double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture);
        if (!double.IsFinite(value))
        {
            throw error(start, $"number '{raw}' is out of range");
        }

        return new SearchToken(SearchTokenKind.Number, raw, raw, start, value);
    }
}

/// <summary>A cursor over tokens that also knows how to phrase errors for its kind of input.</summary>
internal sealed class SearchTokenReader(
    IReadOnlyList<SearchToken> tokens, Func<int, string, SearchSyntaxException> error, string endDescription)
{
    private int _index;

    public SearchToken Peek => tokens[_index];

    public SearchToken Next()
    {
        var token = tokens[_index];
        if (token.Kind != SearchTokenKind.End)
        {
            _index++;
        }

        return token;
    }

    /// <summary>Quoted tokens are shown as written; anything else is put in single quotes.</summary>
    public string Describe(SearchToken token) => token.Kind switch
    {
        SearchTokenKind.End => endDescription,
        SearchTokenKind.SingleQuoted or SearchTokenKind.DoubleQuoted or SearchTokenKind.BacktickQuoted => token.Raw,
        _ => $"'{token.Raw}'",
    };

    public SearchSyntaxException Fail(int position, string message) => error(position, message);

    /// <summary>An error at the current token: "expected X but found Y".</summary>
    public SearchSyntaxException Unexpected(string expected) =>
        error(Peek.Position, $"expected {expected} but found {Describe(Peek)}");
}
