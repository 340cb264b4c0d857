/**
 * AutoMTLS: each side makes a throwaway self-signed certificate the way go-plugin
 * does (ECDSA P-521, CA, "localhost", client and server auth), and trusts only
 * the other side's. The host's goes to the plugin in PLUGIN_CLIENT_CERT as PEM;
 * the plugin's comes back in the handshake line as base64 DER.
 */
import * as crypto from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as asn1 from './asn1';
import { TLS_SERVER_NAME } from './constants';

export interface TlsIdentity {
  certPem: string;
  certDer: Buffer;
  keyPem: string;
}

const OID = {
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  basicConstraints: '2.5.29.19',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

/** go-plugin's validity: from 30 s ago for clock skew, for 262,980 hours. */
const VALID_BEFORE_MS = 30_000;
const VALID_FOR_MS = 262_980 * 3600_000;

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return critical
    ? asn1.sequence(asn1.objectId(oid), asn1.booleanTrue(), asn1.octetString(value))
    : asn1.sequence(asn1.objectId(oid), asn1.octetString(value));
}

/** Generates a fresh ECDSA P-521 key and a self-signed certificate for "localhost". */
export function generateIdentity(now = new Date()): TlsIdentity {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'secp521r1' });
  const name = asn1.sequence(
    asn1.set(asn1.sequence(asn1.objectId(OID.organization), asn1.utf8String('plughost'))),
    asn1.set(asn1.sequence(asn1.objectId(OID.commonName), asn1.utf8String(TLS_SERVER_NAME))),
  );
  const algorithm = asn1.sequence(asn1.objectId(OID.ecdsaWithSha512));
  const serial = crypto.randomBytes(16);
  serial[0] &= 0x7f;
  serial[0] |= 0x01;
  // digitalSignature, keyEncipherment, keyAgreement, keyCertSign: bits 0, 2, 4, 5.
  const keyUsageBits = asn1.bitString(Buffer.from([0b1010_1100]), 2);
  const tbs = asn1.sequence(
    asn1.explicit(0, asn1.unsignedInteger(Buffer.from([2]))),
    asn1.unsignedInteger(serial),
    algorithm,
    name,
    asn1.sequence(asn1.time(new Date(now.getTime() - VALID_BEFORE_MS)), asn1.time(new Date(now.getTime() + VALID_FOR_MS))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    asn1.explicit(
      3,
      asn1.sequence(
        extension(OID.keyUsage, true, keyUsageBits),
        extension(OID.extKeyUsage, false, asn1.sequence(asn1.objectId(OID.clientAuth), asn1.objectId(OID.serverAuth))),
        extension(OID.basicConstraints, true, asn1.sequence(asn1.booleanTrue())),
        extension(OID.subjectAltName, false, asn1.sequence(asn1.implicitPrimitive(2, Buffer.from(TLS_SERVER_NAME, 'ascii')))),
      ),
    ),
  );
  const signature = crypto.sign('sha512', tbs, privateKey);
  const certDer = asn1.sequence(tbs, algorithm, asn1.bitString(signature));
  return {
    certDer,
    certPem: derToPem(certDer),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

export function derToPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/**
 * Both ends of every connection (main and broker, either direction) present
 * their own certificate and accept only the peer's.
 */
export interface MutualTls {
  own: TlsIdentity;
  peerCertPem: string;
}

export function channelCredentials(tls: MutualTls | null): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(Buffer.from(tls.peerCertPem), Buffer.from(tls.own.keyPem), Buffer.from(tls.own.certPem));
}

export function serverCredentials(tls: MutualTls | null): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(
    Buffer.from(tls.peerCertPem),
    [{ cert_chain: Buffer.from(tls.own.certPem), private_key: Buffer.from(tls.own.keyPem) }],
    true,
  );
}

/** Channel options for a connection to a peer: certificates are issued to "localhost". */
export function channelOptions(tls: MutualTls | null): grpc.ChannelOptions {
  const base: grpc.ChannelOptions = { 'grpc.enable_retries': 0 };
  if (!tls) return base;
  return { ...base, 'grpc.ssl_target_name_override': TLS_SERVER_NAME, 'grpc.default_authority': TLS_SERVER_NAME };
}
