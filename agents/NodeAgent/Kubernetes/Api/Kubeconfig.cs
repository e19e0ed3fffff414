using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Toolforge.Agents.Common.Tls;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Toolforge.Agents.NodeAgent.Kubernetes.Api;

/// <summary>A kubeconfig that cannot be used, naming the file and what is wrong.</summary>
public sealed class KubeconfigException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Where the API server is and how to authenticate to it, from a kubeconfig's current context: the cluster's server,
/// certificate-authority(-data) and insecure-skip-tls-verify; the user's client-certificate(-data) and
/// client-key(-data) (the kubelet's kubeconfig), token or tokenFile. Relative paths are relative to the kubeconfig's
/// directory, as kubectl reads them. exec and auth-provider users are refused with a clear error: a node's own
/// credentials never need a plugin, and running one would be a command the agent does not control.
/// </summary>
public sealed class Kubeconfig
{
    public required Uri Server { get; init; }

    /// <summary>The CA bundle the server's certificate must lead to; null: the system's store.</summary>
    public X509Certificate2Collection? CertificateAuthority { get; init; }

    public bool InsecureSkipTlsVerify { get; init; }

    public X509Certificate2? ClientCertificate { get; init; }

    public string? Token { get; init; }

    /// <summary>Read again on every request (projected service-account tokens rotate).</summary>
    public string? TokenFile { get; init; }

    public static Kubeconfig Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new KubeconfigException($"kubeconfig {path}: {ex.Message}", ex);
        }

        return Parse(text, path);
    }

    public static Kubeconfig Parse(string text, string path)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException ex)
        {
            throw new KubeconfigException($"kubeconfig {path}: not YAML: {ex.Message}", ex);
        }

        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            throw new KubeconfigException($"kubeconfig {path}: not a kubeconfig (no mapping at the top)");
        }

        var dir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? "/";
        var contextName = Scalar(root, "current-context") ?? throw new KubeconfigException($"kubeconfig {path}: no current-context");
        var context = Named(root, "contexts", "context", contextName, path);
        var clusterName = Scalar(context, "cluster") ?? throw new KubeconfigException($"kubeconfig {path}: context {contextName} names no cluster");
        var cluster = Named(root, "clusters", "cluster", clusterName, path);
        var userName = Scalar(context, "user");
        var user = userName is null ? null : Named(root, "users", "user", userName, path);

        var server = Scalar(cluster, "server") ?? throw new KubeconfigException($"kubeconfig {path}: cluster {clusterName} has no server");
        if (!Uri.TryCreate(server, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http"))
        {
            throw new KubeconfigException($"kubeconfig {path}: cluster {clusterName}: server \"{server}\" is not an http(s) URL");
        }

        if (user is not null && (user.Children.ContainsKey(new YamlScalarNode("exec")) || user.Children.ContainsKey(new YamlScalarNode("auth-provider"))))
        {
            throw new KubeconfigException($"kubeconfig {path}: user {userName} uses an exec or auth-provider plugin; give the agent a certificate or a token");
        }

        try
        {
            return new Kubeconfig
            {
                Server = uri,
                InsecureSkipTlsVerify = Scalar(cluster, "insecure-skip-tls-verify") is "true",
                CertificateAuthority = Pem(cluster, "certificate-authority", dir) is { } ca ? Certificates.BundleFromPem(ca, $"cluster {clusterName}'s certificate authority") : null,
                ClientCertificate = LoadClientCertificate(user, dir, userName),
                Token = user is null ? null : Scalar(user, "token"),
                TokenFile = user is not null && Scalar(user, "tokenFile") is { } tf ? Path.Combine(dir, tf) : null,
            };
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or FormatException or InvalidDataException or ArgumentException)
        {
            throw new KubeconfigException($"kubeconfig {path}: {ex.Message}", ex);
        }
    }

    private static X509Certificate2? LoadClientCertificate(YamlMappingNode? user, string dir, string? userName)
    {
        if (user is null || Pem(user, "client-certificate", dir) is not { } cert)
        {
            return null;
        }

        var key = Pem(user, "client-key", dir) ?? throw new InvalidDataException($"user {userName} has a client certificate but no client-key");
        return Certificates.FromPemWithKey(cert, key);
    }

    /// <summary>KEY-data (base64 of PEM) or KEY (a file, relative to the kubeconfig).</summary>
    private static string? Pem(YamlMappingNode node, string key, string dir)
    {
        if (Scalar(node, key + "-data") is { } data)
        {
            try
            {
                return Encoding.UTF8.GetString(Convert.FromBase64String(data));
            }
            catch (FormatException)
            {
                throw new FormatException($"{key}-data is not base64");
            }
        }

        return Scalar(node, key) is { } file ? File.ReadAllText(Path.Combine(dir, file)) : null;
    }

    private static YamlMappingNode Named(YamlMappingNode root, string list, string inner, string name, string path)
    {
        if (root.Children.TryGetValue(new YamlScalarNode(list), out var l) && l is YamlSequenceNode seq)
        {
            foreach (var item in seq.Children.OfType<YamlMappingNode>())
            {
                if (Scalar(item, "name") == name)
                {
                    return item.Children.TryGetValue(new YamlScalarNode(inner), out var body) && body is YamlMappingNode m
                        ? m
                        : throw new KubeconfigException($"kubeconfig {path}: {list} entry {name} has no {inner}");
                }
            }
        }

        throw new KubeconfigException($"kubeconfig {path}: no {inner} named {name} in {list}");
    }

    private static string? Scalar(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var v) && v is YamlScalarNode { Value: { Length: > 0 } s } ? s : null;
}
